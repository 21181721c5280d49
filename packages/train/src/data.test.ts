import { describe, expect, it } from "vitest";
import { TrainRng } from "@lm4lv/data";
import { ShuffledBatches } from "./data.js";

describe("ShuffledBatches", () => {
  const make = () => new ShuffledBatches({ size: 10, batchSize: 3, seed: 5, load: (idx) => idx });

  it("visits every item once per epoch in a seeded order, dropping the incomplete batch", async () => {
    const it = make();
    const rng = new TrainRng(0);
    const epoch0 = [await it.next(rng), await it.next(rng), await it.next(rng)];
    expect(it.batchesPerEpoch).toBe(3);
    expect(new Set(epoch0.flat()).size).toBe(9);
    const first1 = await it.next(rng);
    expect(it.epoch).toBe(1);
    expect(first1).toEqual(it.epochOrder(1).slice(0, 3));
    expect(it.epochOrder(0)).not.toEqual(it.epochOrder(1));
    expect([...it.epochOrder(0)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("resumes from its state with the same batches", async () => {
    const rng = new TrainRng(0);
    const a = make();
    for (let i = 0; i < 4; i++) await a.next(rng);
    const st = JSON.parse(JSON.stringify(a.getState()));
    const rest = [await a.next(rng), await a.next(rng), await a.next(rng)];
    const b = make();
    b.setState(st);
    expect([await b.next(rng), await b.next(rng), await b.next(rng)]).toEqual(rest);
    expect(() => b.setState({ epoch: 0, position: 99 })).toThrow(/bad state/);
  });
});
