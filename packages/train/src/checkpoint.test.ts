import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend, writeSafetensors } from "@lm4lv/core";
import type { TrainRng } from "@lm4lv/data";
import { ShuffledBatches } from "./data.js";
import { Trainer } from "./trainer.js";

type Batch = { idx: number[]; noise: number };

describe("checkpoints written before TrainRng moved to @lm4lv/data", () => {
  let root: string;
  beforeAll(async () => {
    await initBackend("cpu");
    root = mkdtempSync(join(tmpdir(), "lm4lv-ckpt-"));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("resume to the same RNG stream and data order (lm4lv-train/1 file from literals, values pinned)", () => {
    // The file as saveCheckpoint wrote it: F32 tensors, metadata strings; `state.rng` is the TrainRng
    // state [a, b, c, counter] as a JSON array (here: seed 12345 after 1000 draws).
    const path = join(root, "old.safetensors");
    writeSafetensors(
      path,
      {
        w: { shape: [], data: Float32Array.of(0.5), dtype: "F32" },
        "optimizer.exp_avg.w": { shape: [], data: Float32Array.of(0.01), dtype: "F32" },
        "optimizer.exp_avg_sq.w": { shape: [], data: Float32Array.of(0.0001), dtype: "F32" },
      },
      {
        format: "lm4lv-train/1",
        state: '{"step":7,"optimizerStep":7,"rng":[3326202298,3806226094,2261017393,1017],"data":{"epoch":1,"position":3},"bestMetric":null}',
        config: "null",
        history: '{"train":[],"validation":[]}',
      },
    );

    const w = tf.variable(tf.scalar(0), true);
    const data = new ShuffledBatches<Batch>({ size: 10, batchSize: 3, seed: 5, load: (idx: number[], rng: TrainRng) => ({ idx, noise: rng.normal() }) });
    const trainer = new Trainer<Batch>({ variables: { w }, loss: () => tf.scalar(0), data, totalSteps: 10, seed: 99, progress: false, handleSigint: false });
    trainer.restore(path);
    expect(trainer.step).toBe(7);
    expect(w.dataSync()[0]).toBe(0.5);

    // Drawn by @lm4lv/train's own TrainRng and ShuffledBatches before the move, from the same state.
    const batches = [data.next(trainer.rng), data.next(trainer.rng), data.next(trainer.rng)];
    expect(batches).toEqual([
      { idx: [3, 9, 6], noise: -1.050033403995404 },
      { idx: [1, 0, 7], noise: -0.29640195096145744 },
      { idx: [8, 9, 1], noise: 1.0873995340128584 },
    ]);
    expect(trainer.rng.getState()).toEqual([1741143212, 2314677976, 2795240141, 1023]);
    expect(data.getState()).toEqual({ epoch: 2, position: 3 });
    trainer.optimizer.dispose();
    w.dispose();
  });
});
