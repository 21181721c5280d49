import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { accumulateGradients, clipByGlobalNorm, globalNorm } from "./grads.js";

/** A small regression set: y = 2·x0 − 3·x1 + 0.5. */
function dataset(n: number): { x: number[][]; y: number[] } {
  const x = Array.from({ length: n }, (_, i) => [Math.sin(i), Math.cos(0.7 * i)]);
  return { x, y: x.map(([a, b]) => 2 * a - 3 * b + 0.5) };
}

describe("gradients", () => {
  beforeAll(async () => {
    await initBackend("cpu");
  });

  it("clips to the max norm with torch's coefficient and returns the norm before clipping", () => {
    const grads = { a: tf.tensor([3, 0]), b: tf.tensor([[0, 4]]), c: null };
    expect(globalNorm(grads)).toBeCloseTo(5, 6);
    const { grads: out, norm } = clipByGlobalNorm(grads, 1.0);
    expect(norm).toBeCloseTo(5, 6);
    const coef = 1 / (5 + 1e-6);
    expect(Array.from(out.a!.dataSync())).toEqual([Math.fround(3 * coef), 0]);
    expect(out.b!.dataSync()[1]).toBeCloseTo(4 * coef, 7);
    expect(out.c).toBeNull();
    expect(globalNorm(out)).toBeCloseTo(1, 5);
    Object.values(out).forEach((g) => g?.dispose());
  });

  it("leaves gradients below the max norm untouched", () => {
    const a = tf.tensor([0.3, 0.4]);
    const { grads, norm } = clipByGlobalNorm({ a }, 1.0);
    expect(norm).toBeCloseTo(0.5, 6);
    expect(grads.a).toBe(a);
    a.dispose();
  });

  it("k micro-batches of size b give the gradient of one batch of size k·b (mean loss)", () => {
    const { x, y } = dataset(12);
    const w = tf.variable(tf.tensor([[0.1], [-0.2]]), true);
    const b = tf.variable(tf.scalar(0.3), true);
    const vars = { w, b };
    type Batch = { x: number[][]; y: number[] };
    const loss = (batch: Batch) => {
      const pred = tf.add(tf.matMul(tf.tensor2d(batch.x), w), b).reshape([-1]); // (N,)
      const mse = tf.mean(tf.square(tf.sub(pred, tf.tensor1d(batch.y)))) as tf.Scalar;
      const mae = tf.mean(tf.abs(tf.sub(pred, tf.tensor1d(batch.y)))) as tf.Scalar;
      return { loss: mse, parts: { mse, mae } };
    };
    const whole = accumulateGradients(loss, vars, [{ x, y }]);
    const micro = accumulateGradients(loss, vars, [0, 1, 2, 3].map((i) => ({ x: x.slice(3 * i, 3 * i + 3), y: y.slice(3 * i, 3 * i + 3) })));
    expect(micro.loss).toBeCloseTo(whole.loss, 6);
    expect(micro.parts.mse).toBeCloseTo(whole.loss, 6);
    expect(micro.parts.mae).toBeCloseTo(whole.parts.mae, 6);
    for (const n of ["w", "b"]) {
      const a = whole.grads[n]!.dataSync();
      const m = micro.grads[n]!.dataSync();
      expect(m.length).toBe(a.length);
      a.forEach((v, i) => expect(Math.abs(m[i] - v)).toBeLessThan(1e-6));
      expect(Math.abs(a[0])).toBeGreaterThan(0.1);
    }
    [whole, micro].forEach((r) => Object.values(r.grads).forEach((g) => g?.dispose()));
    w.dispose();
    b.dispose();
  });

  it("differentiates only the listed variables", () => {
    const w = tf.variable(tf.scalar(2), true);
    const frozen = tf.variable(tf.scalar(5), true);
    const r = accumulateGradients(() => tf.mul(tf.square(w), frozen) as tf.Scalar, { w }, [null]);
    expect(Object.keys(r.grads)).toEqual(["w"]);
    expect(r.grads.w!.dataSync()[0]).toBeCloseTo(20, 5); // d(5 w²)/dw at 2
    expect(r.loss).toBeCloseTo(20, 5);
    r.grads.w!.dispose();
    const nt = tf.variable(tf.scalar(1), false);
    expect(() => accumulateGradients(() => tf.mul(nt, w) as tf.Scalar, { w, nt }, [null])).toThrow(/"nt" is not trainable/);
    expect(() => accumulateGradients(() => tf.mul(tf.ones([2]), w) as tf.Scalar, { w }, [null])).toThrow(/scalar loss on micro-batch 0/);
    [w, frozen, nt].forEach((v) => v.dispose());
  });
});
