import { afterAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeBindingAvailable } from "./backend.js";
import { unregisterFastWasmBatchMatMul } from "./wasm-matmul.js";

/** Plain float64 reference matmul over a batch. */
function refMatMul(a: Float32Array, b: Float32Array, B: number, M: number, K: number, N: number, ta: boolean, tb: boolean): Float64Array {
  const out = new Float64Array(B * M * N);
  for (let s = 0; s < B; s++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const av = ta ? a[s * K * M + k * M + i] : a[s * M * K + i * K + k];
          const bv = tb ? b[s * N * K + j * K + k] : b[s * K * N + k * N + j];
          acc += av * bv;
        }
        out[s * M * N + i * N + j] = acc;
      }
  return out;
}

describe("initBackend", () => {
  afterAll(() => unregisterFastWasmBatchMatMul());

  it("rejects an unknown forced backend by name", async () => {
    await expect(initBackend("tpu")).rejects.toThrow(/unknown tfjs backend "tpu"/);
  });

  it("selects cpu and wasm when forced", async () => {
    expect(await initBackend("cpu")).toBe("cpu");
    expect(tf.getBackend()).toBe("cpu");
    expect(await initBackend("wasm")).toBe("wasm");
    expect(tf.getBackend()).toBe("wasm");
  });

  it("reports the missing native binding instead of crashing", () => {
    expect(typeof nativeBindingAvailable("@tensorflow/tfjs-node")).toBe("boolean");
  });

  it.each([
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ])("wasm BatchMatMul with transposeA=%s transposeB=%s matches a float64 reference", async (ta, tb) => {
    await initBackend("wasm");
    const [B, M, K, N] = [2, 5, 7, 3];
    const a = Float32Array.from({ length: B * M * K }, (_, i) => Math.sin(i * 0.7));
    const b = Float32Array.from({ length: B * K * N }, (_, i) => Math.cos(i * 0.3));
    const at = tf.tensor3d(a, ta ? [B, K, M] : [B, M, K]);
    const bt = tf.tensor3d(b, tb ? [B, N, K] : [B, K, N]);
    const got = tf.matMul(at, bt, ta, tb).dataSync();
    const want = refMatMul(a, b, B, M, K, N, ta, tb);
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5);
    // gradients route through the transposed kernel too
    const w = tf.tensor3d(Float32Array.from({ length: B * M * N }, (_, i) => Math.sin(1 + i)), [B, M, N]);
    const loss = (x: tf.Tensor) => tf.matMul(x as tf.Tensor3D, bt, ta, tb).mul(w).sum();
    const g = tf.grad(loss)(at).dataSync();
    // finite differences on a few entries (the loss is linear in x, so they are exact up to rounding)
    for (const idx of [0, 5, 17, a.length - 1]) {
      const plus = a.slice(); plus[idx] += 0.5;
      const minus = a.slice(); minus[idx] -= 0.5;
      const lp = loss(tf.tensor3d(plus, at.shape)).dataSync()[0];
      const lm = loss(tf.tensor3d(minus, at.shape)).dataSync()[0];
      expect(Math.abs(g[idx] - (lp - lm))).toBeLessThan(1e-4);
    }
    tf.dispose([at, bt, w]);
  });

  it("wasm has an UnsortedSegmentSum, so gather gradients work and match the cpu backend", async () => {
    const run = () => {
      const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
      const seg = tf.unsortedSegmentSum(x, tf.tensor1d([2, 0, 2, 5], "int32"), 4).arraySync();
      const params = tf.tensor2d([[1, 1], [2, 2], [3, 3]]);
      const w = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
      const g = tf.grad((p: tf.Tensor) => tf.gather(p, tf.tensor1d([2, 0, 2, 1], "int32")).mul(w).sum())(params).arraySync();
      return { seg, g };
    };
    await initBackend("wasm");
    const wasm = run();
    await initBackend("cpu");
    const cpu = run();
    expect(wasm.seg).toEqual([[3, 4], [0, 0], [6, 8], [0, 0]]); // id 5 is out of range: dropped
    expect(wasm.g).toEqual([[3, 4], [7, 8], [6, 8]]);
    expect(wasm).toEqual(cpu);
  });
});
