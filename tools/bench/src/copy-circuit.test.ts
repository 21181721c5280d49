import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { parseCopyCircuitArgs, rankSweep, spectrum, summedOvSpectrum, truncatedValueRows } from "./copy-circuit.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("copy-circuit options", () => {
  it("defaults and flags", () => {
    const o = parseCopyCircuitArgs([])!;
    expect(o.checkpoint.endsWith(join("models", "lm4lv-tiny", "identity"))).toBe(true);
    expect(o).toMatchObject({ count: 8, threshold: 0.4 });
    expect(o.ranks).toEqual([]);
    expect(parseCopyCircuitArgs(["--checkpoint", "ck", "--val", "v", "--count", "2", "--threshold", "0.9", "--ranks", "16,4,8"])).toEqual({ checkpoint: "ck", val: "v", count: 2, threshold: 0.9, ranks: [4, 8, 16] });
  });

  it.each([
    [["--threshold", "0"], /--threshold/],
    [["--count", "0"], /--count: expected a positive integer, got 0/],
    [["ckpt"], /unexpected argument "ckpt"/],
    [["--ranks", "4,0"], /--ranks: expected comma-separated positive integers, got "4,0"/],
    [["--ranks", "4,x"], /--ranks/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseCopyCircuitArgs(argv as string[])).toThrow(message);
  });
});

describe("spectrum", () => {
  it("counts and participation ratio of a hand-computed spectrum", () => {
    const s = spectrum([10, 5, 1, 0.05]);
    expect([s.above10, s.above1]).toEqual([3, 3]);
    expect(s.participation).toBeCloseTo(126.0025 ** 2 / (10000 + 625 + 1 + 0.05 ** 4), 9);
    expect(spectrum([2, 2, 2, 2]).participation).toBeCloseTo(4, 12); // flat: all four directions count
  });
});

describe("summedOvSpectrum on models/lm-wide", () => {
  let lm: LlamaForCausalLM;
  beforeAll(async () => {
    await initBackend();
    lm = LlamaForCausalLM.fromPretrained(join(ROOT, "models", "lm-wide"));
  });
  afterAll(() => lm?.dispose());

  // The OV map formed directly from the weights with tf ops (float32), as an independent route.
  const formed = (heads: [number, number][]) =>
    tf.tidy(() => {
      const p = lm.namedParameters();
      const hd = lm.config.head_dim, d = lm.hiddenSize;
      const maps = heads.map(([l, h]) => {
        const g = p.get(`model.layers.${l}.input_layernorm.weight`)!.reshape([1, d]);
        const wv = p.get(`model.layers.${l}.self_attn.v_proj.weight`)!.slice([h * hd, 0], [hd, d]); // 16 kv heads = 16 heads
        const wo = p.get(`model.layers.${l}.self_attn.o_proj.weight`)!.slice([0, h * hd], [d, hd]);
        return tf.matMul(wo, wv.mul(g));
      });
      return tf.addN(maps).arraySync() as number[][];
    });

  function powerTop(m: number[][]): number {
    const n = m.length;
    const flat = Float64Array.from(m.flat());
    let v = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    let sigma = 0;
    for (let it = 0; it < 100; it++) {
      const u = new Float64Array(n), w = new Float64Array(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i] += flat[i * n + j] * v[j]; // M v
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[j] += flat[i * n + j] * u[i]; // Mᵀ M v
      const norm = Math.sqrt(w.reduce((t, x) => t + x * x, 0));
      sigma = Math.sqrt(norm / Math.sqrt(v.reduce((t, x) => t + x * x, 0)));
      v = w.map((x) => x / norm);
    }
    return sigma;
  }

  it.each([
    [[[1, 0]] as [number, number][]],
    [[[2, 3], [2, 11]] as [number, number][]],
  ])("heads %j: Σσ² is the Frobenius norm² and σ_max the power-iteration value of the formed map", (heads) => {
    const s = summedOvSpectrum(lm, heads);
    const m = formed(heads);
    const frob = m.reduce((t, row) => t + row.reduce((u, x) => u + x * x, 0), 0);
    expect(s.values.reduce((t, v) => t + v * v, 0) / frob).toBeCloseTo(1, 4);
    expect(s.values[0] / powerTop(m)).toBeCloseTo(1, 3);
    expect(s.values.length).toBe(32 * heads.length);
  });
  // The map formed with tf ops (float32) from given value rows of `heads` in `layer`, as an independent route.
  const formedWith = (layer: number, heads: number[], rows: Float64Array[]) =>
    tf.tidy(() => {
      const p = lm.namedParameters();
      const hd = lm.config.head_dim, d = lm.hiddenSize;
      const g = p.get(`model.layers.${layer}.input_layernorm.weight`)!.reshape([1, d]);
      const maps = heads.map((h, c) => {
        const wv = tf.tensor2d(Float32Array.from(rows[c]), [hd, d]);
        const wo = p.get(`model.layers.${layer}.self_attn.o_proj.weight`)!.slice([0, h * hd], [d, hd]);
        return tf.matMul(wo, wv.mul(g));
      });
      return tf.addN(maps).arraySync() as number[][];
    });
  const frob = (m: number[][]) => m.reduce((t, row) => t + row.reduce((u, x) => u + x * x, 0), 0);

  it("truncatedValueRows: the cut map is the best rank-r approximation (Eckart–Young), checked on the formed maps", () => {
    const layer = 2, heads = [3, 11], r = 5;
    const sigma = summedOvSpectrum(lm, heads.map((h) => [layer, h] as [number, number])).values;
    const full = formed(heads.map((h) => [layer, h] as [number, number]));
    const cut = formedWith(layer, heads, truncatedValueRows(lm, layer, heads, r));
    const head = sigma.slice(0, r).reduce((t, v) => t + v * v, 0), tail = sigma.slice(r).reduce((t, v) => t + v * v, 0);
    expect(frob(cut) / head).toBeCloseTo(1, 3); // ‖A_r‖² = Σ_{i≤r} σ_i²
    expect(frob(full.map((row, i) => row.map((x, j) => x - cut[i][j]))) / tail).toBeCloseTo(1, 2); // ‖A − A_r‖² = Σ_{i>r} σ_i²
    expect(powerTop(cut) / sigma[0]).toBeCloseTo(1, 3);
  });

  it("truncatedValueRows keeps the value rows when the rank is not cut", () => {
    const hd = lm.config.head_dim, d = lm.hiddenSize;
    const wv = lm.readParameter("model.layers.1.self_attn.v_proj.weight").data;
    const rows = truncatedValueRows(lm, 1, [0, 15], 64);
    [0, 15].forEach((h, c) => {
      let err = 0, norm = 0;
      for (let i = 0; i < hd * d; i++) {
        err = Math.max(err, Math.abs(rows[c][i] - wv[h * hd * d + i]));
        norm = Math.max(norm, Math.abs(wv[h * hd * d + i]));
      }
      expect(err / norm).toBeLessThan(1e-6);
    });
  });

  it("rankSweep: copying at 83 fails at rank 2 and holds at rank 12; the weights are restored", async () => {
    const before = lm.readParameter("model.layers.2.self_attn.v_proj.weight").data;
    const heads = new Map([[1, [0, 3, 15]], [2, [3, 5, 9, 11, 12, 13]]]);
    const sweep = await rankSweep(lm, heads, [2, 12], 83);
    expect(sweep.map((s) => s.rank)).toEqual([2, 12, "all"]);
    expect(sweep[0].secondCopyLoss).toBeGreaterThan(5); // ln V = 8.3: nothing copied
    expect(sweep[1].secondCopyLoss).toBeLessThan(0.2);
    expect(sweep[2].secondCopyLoss).toBeLessThan(0.2); // the results table: 0.06 nats
    expect(lm.readParameter("model.layers.2.self_attn.v_proj.weight").data).toEqual(before);
  }, 120_000);
});
