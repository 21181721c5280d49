/**
 * Every gradient rule against central finite differences, on small random float64 graphs run by
 * ONNX Runtime (Erf has no float64 kernel in ORT: it is checked in float32 with a looser bound).
 * Each case is `loss = Σ (f(inputs) · r)` with a fixed random `r`, so every output element
 * carries a different weight into the loss.
 */
import { describe, expect, it } from "vitest";
import * as ort from "onnxruntime-node";
import { OnnxGraph } from "./graph.js";
import type { FloatType } from "./graph.js";
import { addGradients, DIFFERENTIABLE_OPS } from "./autodiff.js";

let seed = 12345;
function rand(n: number, lo = -1, hi = 1): number[] {
  return Array.from({ length: n }, () => {
    seed = (seed * 16807) % 2147483647;
    return lo + ((seed - 1) / 2147483646) * (hi - lo);
  });
}

interface InputSpec {
  shape: number[];
  /** Value range of the random data (default [-1, 1]). */
  range?: [number, number];
  /** Fixed values instead of random ones. */
  values?: number[];
}

interface Case {
  name: string;
  /** The ops exercised (for the coverage check). */
  ops: string[];
  inputs: Record<string, InputSpec>;
  build: (g: OnnxGraph, x: Record<string, string>) => string;
  floatType?: FloatType;
  /** Bound on |analytic − numeric| / max(1, |numeric|). */
  tol?: number;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

async function checkCase(c: Case): Promise<number> {
  const ft = c.floatType ?? "float64";
  const g = new OnnxGraph(c.name, { floatType: ft });
  const names: Record<string, string> = {};
  for (const [n, spec] of Object.entries(c.inputs)) names[n] = g.input(n, ft, spec.shape);
  const y = c.build(g, names);
  const r = g.initializer("r", ft === "float64" ? Float64Array.from(rand(prod(g.shape(y)))) : Float32Array.from(rand(prod(g.shape(y)))), g.shape(y));
  const loss = g.op("ReduceSum", [g.op("Mul", [y, r])], { keepdims: 0 });
  g.output(loss, ft, [], "loss");
  const grads = addGradients(g, { loss, wrt: Object.values(names) });
  const session = await ort.InferenceSession.create(g.toBytes());
  const Arr = ft === "float64" ? Float64Array : Float32Array;
  const values: Record<string, Float64Array | Float32Array> = {};
  for (const [n, spec] of Object.entries(c.inputs)) values[n] = Arr.from(spec.values ?? rand(prod(spec.shape), ...(spec.range ?? [-1, 1])));
  const feeds = () => Object.fromEntries(Object.entries(c.inputs).map(([n, spec]) => [n, new ort.Tensor(ft, values[n], spec.shape)]));
  const run = async () => (await session.run(feeds())) as Record<string, ort.Tensor>;
  const base = await run();
  const h = ft === "float64" ? 1e-6 : 1e-2;
  let worst = 0;
  for (const n of Object.keys(c.inputs)) {
    const analytic = base[grads[names[n]]].data as Float64Array;
    expect(analytic.length).toBe(values[n].length);
    for (let i = 0; i < values[n].length; i++) {
      const v0 = values[n][i];
      values[n][i] = v0 + h;
      const up = Number((await run()).loss.data[0]);
      values[n][i] = v0 - h;
      const down = Number((await run()).loss.data[0]);
      values[n][i] = v0;
      const numeric = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(analytic[i] - numeric) / Math.max(1, Math.abs(numeric)));
    }
  }
  await session.release();
  return worst;
}

const CASES: Case[] = [
  { name: "add_broadcast", ops: ["Add"], inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, build: (g, x) => g.op("Add", [x.a, x.b]) },
  { name: "sub_broadcast", ops: ["Sub"], inputs: { a: { shape: [4] }, b: { shape: [2, 3, 4] } }, build: (g, x) => g.op("Sub", [x.a, x.b]) },
  { name: "mul_broadcast", ops: ["Mul"], inputs: { a: { shape: [2, 1, 4] }, b: { shape: [3, 1] } }, build: (g, x) => g.op("Mul", [x.a, x.b]) },
  { name: "div_broadcast", ops: ["Div"], inputs: { a: { shape: [2, 3] }, b: { shape: [3], range: [0.5, 2] } }, build: (g, x) => g.op("Div", [x.a, x.b]) },
  { name: "pow_square_and_root", ops: ["Pow"], inputs: { a: { shape: [2, 3], range: [0.2, 2] } }, build: (g, x) => g.op("Add", [g.op("Pow", [x.a, g.f32([2])]), g.op("Pow", [x.a, g.f32([0.5])])]) },
  { name: "sqrt", ops: ["Sqrt"], inputs: { a: { shape: [5], range: [0.2, 3] } }, build: (g, x) => g.op("Sqrt", [x.a]) },
  { name: "reciprocal", ops: ["Reciprocal"], inputs: { a: { shape: [5], range: [0.3, 3] } }, build: (g, x) => g.op("Reciprocal", [x.a]) },
  { name: "exp_log", ops: ["Exp", "Log"], inputs: { a: { shape: [5] }, b: { shape: [5], range: [0.3, 3] } }, build: (g, x) => g.op("Add", [g.op("Exp", [x.a]), g.op("Log", [x.b])]) },
  { name: "neg_identity", ops: ["Neg", "Identity"], inputs: { a: { shape: [3] } }, build: (g, x) => g.op("Identity", [g.op("Neg", [x.a])]) },
  { name: "sigmoid_silu", ops: ["Sigmoid"], inputs: { a: { shape: [6], range: [-3, 3] } }, build: (g, x) => g.op("Mul", [x.a, g.op("Sigmoid", [x.a])]) },
  { name: "tanh", ops: ["Tanh"], inputs: { a: { shape: [6], range: [-2, 2] } }, build: (g, x) => g.op("Tanh", [x.a]) },
  { name: "relu", ops: ["Relu"], inputs: { a: { shape: [6], values: [-1.5, -0.3, 0.2, 0.7, 1.1, -2] } }, build: (g, x) => g.op("Relu", [x.a]) },
  { name: "abs_l1", ops: ["Abs"], inputs: { a: { shape: [6], values: [-1.5, -0.3, 0.2, 0.7, 1.1, -2] } }, build: (g, x) => g.op("Abs", [x.a]) },
  {
    name: "gelu_erf_float32",
    ops: ["Erf"],
    floatType: "float32",
    tol: 2e-2,
    inputs: { a: { shape: [6], range: [-2, 2] } },
    build: (g, x) => g.op("Mul", [g.op("Mul", [x.a, g.op("Add", [g.op("Erf", [g.op("Div", [x.a, g.f32([Math.SQRT2])])]), g.f32([1])])]), g.f32([0.5])]),
  },
  { name: "matmul_2d_weight", ops: ["MatMul"], inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4, 5] } }, build: (g, x) => g.op("MatMul", [x.a, x.b]) },
  { name: "matmul_batched", ops: ["MatMul"], inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 2] } }, build: (g, x) => g.op("MatMul", [x.a, x.b]) },
  { name: "matmul_broadcast_lhs", ops: ["MatMul"], inputs: { a: { shape: [3, 4] }, b: { shape: [2, 4, 2] } }, build: (g, x) => g.op("MatMul", [x.a, x.b]) },
  { name: "matmul_broadcast_batch", ops: ["MatMul"], inputs: { a: { shape: [2, 1, 3, 4] }, b: { shape: [3, 4, 2] } }, build: (g, x) => g.op("MatMul", [x.a, x.b]) },
  { name: "softmax_last", ops: ["Softmax"], inputs: { a: { shape: [2, 5], range: [-2, 2] } }, build: (g, x) => g.op("Softmax", [x.a], { axis: -1 }) },
  { name: "softmax_axis1", ops: ["Softmax"], inputs: { a: { shape: [2, 3, 2], range: [-2, 2] } }, build: (g, x) => g.op("Softmax", [x.a], { axis: 1 }) },
  { name: "logsoftmax", ops: ["LogSoftmax"], inputs: { a: { shape: [3, 4], range: [-2, 2] } }, build: (g, x) => g.op("LogSoftmax", [x.a], { axis: -1 }) },
  { name: "reducemean_keep", ops: ["ReduceMean"], inputs: { a: { shape: [2, 3, 4] } }, build: (g, x) => g.op("ReduceMean", [x.a], { axes: [-1], keepdims: 1 }) },
  { name: "reducemean_drop_two_axes", ops: ["ReduceMean"], inputs: { a: { shape: [2, 3, 4] } }, build: (g, x) => g.op("ReduceMean", [x.a], { axes: [0, 2], keepdims: 0 }) },
  { name: "reducesum", ops: ["ReduceSum"], inputs: { a: { shape: [2, 3, 4] } }, build: (g, x) => g.op("ReduceSum", [x.a, g.i64([1])], { keepdims: 0 }) },
  {
    name: "layernorm",
    ops: ["LayerNormalization"],
    inputs: { a: { shape: [2, 3, 5], range: [-2, 2] }, w: { shape: [5], range: [0.5, 1.5] }, b: { shape: [5] } },
    build: (g, x) => g.op("LayerNormalization", [x.a, x.w, x.b], { axis: -1, epsilon: { float: 1e-5 } }),
  },
  {
    name: "rmsnorm_chain",
    ops: ["Pow", "ReduceMean", "Sqrt", "Div", "Mul"],
    inputs: { a: { shape: [2, 3, 4] }, w: { shape: [4] } },
    build: (g, x) => {
      const ms = g.op("ReduceMean", [g.op("Pow", [x.a, g.f32([2])])], { axes: [-1], keepdims: 1 });
      return g.op("Mul", [g.op("Div", [x.a, g.op("Sqrt", [g.op("Add", [ms, g.f32([1e-6])])])]), x.w]);
    },
  },
  { name: "reshape", ops: ["Reshape"], inputs: { a: { shape: [2, 3, 4] } }, build: (g, x) => g.op("Reshape", [x.a, g.i64([0, -1, 2])]) },
  { name: "transpose", ops: ["Transpose"], inputs: { a: { shape: [2, 3, 4] } }, build: (g, x) => g.op("Transpose", [x.a], { perm: [2, 0, 1] }) },
  { name: "squeeze_unsqueeze", ops: ["Squeeze", "Unsqueeze"], inputs: { a: { shape: [2, 1, 3] } }, build: (g, x) => g.op("Unsqueeze", [g.op("Squeeze", [x.a, g.i64([1])]), g.i64([0])]) },
  { name: "expand", ops: ["Expand"], inputs: { a: { shape: [1, 3] } }, build: (g, x) => g.op("Expand", [x.a, g.i64([2, 4, 3])]) },
  { name: "concat", ops: ["Concat"], inputs: { a: { shape: [2, 2] }, b: { shape: [2, 3] } }, build: (g, x) => g.op("Concat", [x.a, x.b, x.a], { axis: 1 }) },
  {
    name: "split_partly_used",
    ops: ["Split"],
    inputs: { a: { shape: [2, 6] } },
    build: (g, x) => {
      const [p, , q] = g.node("Split", [x.a, g.i64([1, 2, 3])], { axis: -1 }, 3);
      return g.op("Concat", [q, p], { axis: 1 });
    },
  },
  { name: "slice", ops: ["Slice"], inputs: { a: { shape: [3, 5] } }, build: (g, x) => g.op("Slice", [x.a, g.i64([1, -4]), g.i64([3, 4]), g.i64([0, 1])]) },
  {
    name: "gather_repeated_rows",
    ops: ["Gather"],
    inputs: { table: { shape: [5, 3] } },
    build: (g, x) => g.op("Gather", [x.table, g.initializer("ids", BigInt64Array.from([4n, 0n, 4n, 2n, 4n, 1n]), [2, 3])], { axis: 0 }),
  },
  {
    name: "cross_entropy",
    ops: ["LogSoftmax", "GatherElements", "ReduceMean", "Neg"],
    inputs: { logits: { shape: [4, 6], range: [-3, 3] } },
    build: (g, x) => {
      const labels = g.initializer("labels", BigInt64Array.from([5n, 0n, 2n, 2n]), [4, 1]);
      const picked = g.op("GatherElements", [g.op("LogSoftmax", [x.logits], { axis: -1 }), labels], { axis: 1 }); // [4, 1]
      return g.op("Neg", [g.op("ReduceMean", [picked], { axes: [0, 1], keepdims: 0 })]);
    },
  },
  {
    name: "where_mask",
    ops: ["Where"],
    inputs: { a: { shape: [2, 3] }, b: { shape: [3] } },
    build: (g, x) => g.op("Where", [g.initializer("cond", Uint8Array.from([1, 0, 1, 0, 0, 1]), [2, 3]), x.a, x.b]),
  },
  {
    name: "sum_fan_out",
    ops: ["Sum", "Mul"],
    inputs: { a: { shape: [3] }, b: { shape: [2, 3] } },
    build: (g, x) => g.op("Sum", [x.a, g.op("Mul", [x.a, x.b]), x.b]),
  },
  {
    name: "mse_l1",
    ops: ["Sub", "Mul", "ReduceMean", "Abs"],
    inputs: { pred: { shape: [2, 4] }, target: { shape: [2, 4] } },
    build: (g, x) => {
      const d = g.op("Sub", [x.pred, x.target]);
      return g.op("Add", [g.op("ReduceMean", [g.op("Mul", [d, d])], { axes: [0, 1], keepdims: 0 }), g.op("ReduceMean", [g.op("Abs", [d])], { axes: [0, 1], keepdims: 0 })]);
    },
  },
  { name: "cast_float", ops: ["Cast"], inputs: { a: { shape: [3] } }, build: (g, x) => g.op("Mul", [g.op("Cast", [x.a], { to: 1 }), x.a]) },
  {
    name: "attention_block",
    ops: ["MatMul", "Softmax", "Transpose", "Reshape", "Add"],
    inputs: { q: { shape: [1, 2, 3, 2] }, k: { shape: [1, 2, 3, 2] }, v: { shape: [1, 2, 3, 2] } },
    build: (g, x) => {
      const bias = g.initializer("bias", Float64Array.from([0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0]), [1, 1, 3, 3]);
      const scores = g.op("Add", [g.op("MatMul", [x.q, g.op("Transpose", [x.k], { perm: [0, 1, 3, 2] })]), bias]);
      return g.op("Reshape", [g.op("MatMul", [g.op("Softmax", [scores], { axis: -1 }), x.v]), g.i64([1, 3, 4])]);
    },
  },
];

describe("addGradients: every rule against central finite differences", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const worst = await checkCase(c);
      expect(worst).toBeLessThan(c.tol ?? 1e-6);
    });
  }

  it("covers every operator that has a rule", () => {
    const tested = new Set(CASES.flatMap((c) => c.ops));
    expect(DIFFERENTIABLE_OPS.filter((op) => !tested.has(op))).toEqual([]);
  });
});

describe("addGradients: graph handling", () => {
  it("gives zeros for a value the loss does not depend on, and names unsupported ops", async () => {
    const g = new OnnxGraph("zero", { floatType: "float64" });
    const a = g.input("a", "float64", [3]);
    const b = g.input("b", "float64", [2]);
    g.op("Neg", [b]); // dead branch
    const loss = g.op("ReduceSum", [g.op("Mul", [a, a])], { keepdims: 0 });
    const grads = addGradients(g, { loss, wrt: [a, b] });
    const s = await ort.InferenceSession.create(g.toBytes());
    const out = await s.run({ a: new ort.Tensor("float64", Float64Array.from([1, 2, 3]), [3]), b: new ort.Tensor("float64", Float64Array.from([5, 6]), [2]) });
    expect(Array.from(out[grads[a]].data as Float64Array)).toEqual([2, 4, 6]);
    expect(Array.from(out[grads[b]].data as Float64Array)).toEqual([0, 0]);

    const h = new OnnxGraph("bad", { floatType: "float64" });
    const x = h.input("x", "float64", [2, 3]);
    const l = h.op("ReduceSum", [h.op("Tile", [x, h.i64([2, 1])])], { keepdims: 0 });
    expect(() => addGradients(h, { loss: l, wrt: [x] })).toThrow(/no gradient rule for Tile/);
    const k = new OnnxGraph("vector", { floatType: "float64" });
    const z = k.input("z", "float64", [2]);
    expect(() => addGradients(k, { loss: k.op("Neg", [z]), wrt: [z] })).toThrow(/expected a scalar/);
  });

  it("trainable parameters become inputs, frozen ones stay initializers", () => {
    const g = new OnnxGraph("params", { trainable: ["w"] });
    g.param("w", new Float32Array(6), [2, 3]);
    g.param("frozen", new Float32Array(3), [3]);
    expect(g.trainableParams).toEqual(["w"]);
    expect(g.initializerCount).toBe(1);
    expect(() => g.param("w2", new Float32Array(5), [2, 3])).toThrow(/needs 6/);
  });
});
