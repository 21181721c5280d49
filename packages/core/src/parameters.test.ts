import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./backend.js";
import { ParameterStore, transpose2d } from "./parameters.js";

/** W [out 2, in 3], a bias [2], a norm [3]. */
const W = [1, 2, 3, 4, 5, 6];

function store(): ParameterStore {
  return new ParameterStore("Test", [
    { name: "proj.weight", tensor: tf.tensor2d(W, [2, 3]), linear: true },
    { name: "proj.bias", tensor: tf.tensor1d([0.5, -0.5]) },
    { name: "norm.weight", tensor: tf.tensor1d([1, 1, 1]) },
  ]);
}

beforeAll(async () => {
  await initBackend("cpu");
});

describe("ParameterStore", () => {
  it("holds a frozen Linear weight as its kernel and gives it back in HF layout", () => {
    const s = store();
    expect(s.names()).toEqual(["proj.weight", "proj.bias", "norm.weight"]);
    expect(s.shape("proj.weight")).toEqual([2, 3]);
    expect(s.kernel("proj.weight").shape).toEqual([3, 2]);
    expect(Array.from(s.kernel("proj.weight").dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
    const named = s.namedParameters();
    expect([...named.keys()]).toEqual(s.names());
    expect(named.get("proj.weight")!.shape).toEqual([2, 3]);
    expect(Array.from(named.get("proj.weight")!.dataSync())).toEqual(W);
    expect(s.namedParameters().get("proj.weight")).toBe(named.get("proj.weight")); // one copy, kept
    expect(Array.from(s.read("proj.weight"))).toEqual(W);
    expect(s.count()).toBe(11);
    expect(s.count((n) => n.startsWith("proj."))).toBe(8);
    expect(() => s.get("proj.weight")).toThrow(/Linear weight; use kernel/);
    expect(() => s.kernel("proj.bias")).toThrow(/not a Linear weight/);
    expect(() => s.get("nope")).toThrow(/Test: no parameter "nope"/);
    s.dispose();
    expect(() => s.namedParameters()).toThrow(/disposed/);
  });

  it("accepts a Linear weight given as a kernel", () => {
    const s = new ParameterStore("Test", [{ name: "w", tensor: tf.tensor2d([1, 4, 2, 5, 3, 6], [3, 2]), linear: true, layout: "kernel" }]);
    expect(Array.from(s.read("w"))).toEqual(W);
    expect(s.shape("w")).toEqual([2, 3]);
    s.dispose();
  });

  it("trainable parameters are HF-layout variables; the kernel is their transpose, with gradients", () => {
    const s = store();
    const before = tf.memory().numTensors;
    const vars = s.trainable((n) => n.startsWith("proj."));
    expect(Object.keys(vars)).toEqual(["proj.weight", "proj.bias"]);
    expect(vars["proj.weight"]).toBeInstanceOf(tf.Variable);
    expect(vars["proj.weight"].shape).toEqual([2, 3]);
    expect(Array.from(vars["proj.weight"].dataSync())).toEqual(W);
    expect(s.namedParameters().get("proj.weight")).toBe(vars["proj.weight"]);
    expect(s.namedParameters().get("norm.weight")).not.toBeInstanceOf(tf.Variable);
    expect(s.trainable((n) => n === "proj.weight")["proj.weight"]).toBe(vars["proj.weight"]); // stable
    expect(tf.memory().numTensors).toBe(before); // each tensor replaced by its variable
    // y = sum(x · Wᵀ) → dy/dW[o, i] = x[i]
    const x = tf.tensor2d([1, 10, 100], [1, 3]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.matMul(x, s.kernel("proj.weight"))) as tf.Scalar, [vars["proj.weight"]]);
    expect(Array.from(Object.values(grads)[0].dataSync())).toEqual([1, 10, 100, 1, 10, 100]);
    s.dispose();
  });

  it("adds an HF-layout delta to a kernel", () => {
    const s = store();
    const k = s.kernel("proj.weight", tf.tensor2d([10, 20, 30, 40, 50, 60], [2, 3]));
    expect(Array.from(k.dataSync())).toEqual([11, 44, 22, 55, 33, 66]);
    s.dispose();
  });

  it("rejects a Linear weight that is not 2-D and disposes what it took", () => {
    const before = tf.memory().numTensors;
    expect(() => new ParameterStore("Test", [{ name: "a", tensor: tf.ones([2]) }, { name: "w", tensor: tf.ones([2]), linear: true }])).toThrow(/Linear weight "w" has shape \[2\]/);
    expect(tf.memory().numTensors).toBe(before + 1); // only the rejected tensor, which the caller still holds
  });
});

describe("transpose2d", () => {
  it("swaps rows and columns, also across its 64-wide blocks", () => {
    expect(transpose2d(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3)).toEqual(Float32Array.of(1, 4, 2, 5, 3, 6));
    const rows = 70, cols = 130;
    const a = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const t = transpose2d(a, rows, cols);
    for (const [r, c] of [[0, 0], [69, 129], [5, 100], [65, 3]]) expect(t[c * rows + r]).toBe(a[r * cols + c]);
    expect(transpose2d(t, cols, rows)).toEqual(a);
    expect(() => transpose2d(a, 3, 3)).toThrow(/needs 9/);
  });
});
