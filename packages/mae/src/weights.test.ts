import { describe, expect, it } from "vitest";
import { SeededRandom } from "./weights.js";

describe("SeededRandom", () => {
  it("draws the pinned stream (initWeights' parameters depend on it)", () => {
    // [seed, two uniforms, three normals], drawn when SeededRandom had its own copy of mulberry32
    // (before it used core's Mulberry32): the same seed must keep giving the same initial weights.
    const pinned: [number, number[], number[]][] = [
      [0, [0.3588899802416563, 0.10590326134115458], [1.3048697028945047, -0.7395698859281533, -0.1457991595662962]],
      [7, [0.9823943767696619, 0.3341257639694959], [1.0707846387191051, 1.0913176903471697, 0.20996792459552166]],
      [-5, [0.6532046326901764, 0.7138221093919128], [0.6601852858718744, 0.17858175191334713, -0.06586170317242447]],
      [2 ** 33 + 1, [0.18967728852294385, 0.31778763560578227], [-1.7069744927804573, -0.37775502480525386, -0.7319264806030734]],
    ];
    for (const [seed, u, n] of pinned) {
      const r = new SeededRandom(seed);
      expect([r.uniform(), r.uniform()], `seed ${seed}`).toEqual(u);
      expect([r.normal(), r.normal(), r.normal()], `seed ${seed}`).toEqual(n);
    }
  });
});
