/**
 * Transformer pieces written as ONNX nodes on an `OnnxGraph`. Every helper takes value names
 * and returns the name of its result; shapes in comments use B batch, T positions, D width.
 * The patterns are the plain-op forms that ONNX Runtime's optimizer fuses (LayerNormalization,
 * Gelu from Erf, SimplifiedLayerNormalization from the RMSNorm chain, MatMul + Add).
 */
import type { OnnxGraph } from "./graph.js";

/** A linear layer's constants: kernel `[in, out]` (PyTorch weight transposed), optional bias `[out]`. */
export interface LinearInit {
  kernel: string;
  bias?: string;
}

/** Registers a linear layer's parameters under `name`.kernel / `name`.bias (see `OnnxGraph.param`). */
export function linearInit(g: OnnxGraph, name: string, kernel: Float32Array, inDim: number, outDim: number, bias?: Float32Array): LinearInit {
  const k = g.param(`${name}.kernel`, kernel, [inDim, outDim]);
  return bias ? { kernel: k, bias: g.param(`${name}.bias`, bias, [outDim]) } : { kernel: k };
}

/** x `[..., in]` → `[..., out]`. */
export function linear(g: OnnxGraph, x: string, w: LinearInit): string {
  const y = g.op("MatMul", [x, w.kernel]);
  return w.bias ? g.op("Add", [y, w.bias]) : y;
}

/** LayerNorm over the last axis (ONNX LayerNormalization, opset 17). */
export function layerNorm(g: OnnxGraph, x: string, weight: string, bias: string, eps: number): string {
  return g.op("LayerNormalization", [x, weight, bias], { axis: -1, epsilon: { float: eps } });
}

/** RMSNorm: w · x / √(mean(x²) + eps) over the last axis. */
export function rmsNorm(g: OnnxGraph, x: string, weight: string, eps: number): string {
  const sq = g.op("Pow", [x, g.f32([2])]);
  const ms = g.op("ReduceMean", [sq], { axes: [-1], keepdims: 1 }); // [B, T, 1]
  const rms = g.op("Sqrt", [g.op("Add", [ms, g.f32([eps])])]);
  return g.op("Mul", [g.op("Div", [x, rms]), weight]);
}

/** Activation by HF name: exact-erf "gelu", tanh "gelu_new" / "gelu_pytorch_tanh", "relu", "silu". */
export function activation(g: OnnxGraph, x: string, name: string): string {
  switch (name) {
    case "gelu": {
      // 0.5 · x · (1 + erf(x / √2))
      const e = g.op("Erf", [g.op("Div", [x, g.f32([Math.SQRT2])])]);
      return g.op("Mul", [g.op("Mul", [x, g.op("Add", [e, g.f32([1])])]), g.f32([0.5])]);
    }
    case "gelu_new":
    case "gelu_pytorch_tanh": {
      // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))
      const cube = g.op("Mul", [g.op("Pow", [x, g.f32([3])]), g.f32([0.044715])]);
      const inner = g.op("Mul", [g.op("Add", [x, cube]), g.f32([Math.sqrt(2 / Math.PI)])]);
      const t = g.op("Tanh", [inner]);
      return g.op("Mul", [g.op("Mul", [x, g.op("Add", [t, g.f32([1])])]), g.f32([0.5])]);
    }
    case "relu":
      return g.op("Relu", [x]);
    case "silu":
      return g.op("Mul", [x, g.op("Sigmoid", [x])]);
    default:
      throw new Error(`activation "${name}" has no ONNX export`);
  }
}

/** `[B, T, H·hd]` → `[B, H, T, hd]`. */
export function splitHeads(g: OnnxGraph, x: string, heads: number, headDim: number): string {
  const r = g.op("Reshape", [x, g.i64([0, 0, heads, headDim])]); // [B, T, H, hd]
  return g.op("Transpose", [r], { perm: [0, 2, 1, 3] });
}

/** `[B, H, T, hd]` → `[B, T, H·hd]`. */
export function mergeHeads(g: OnnxGraph, x: string, heads: number, headDim: number): string {
  const t = g.op("Transpose", [x], { perm: [0, 2, 1, 3] }); // [B, T, H, hd]
  return g.op("Reshape", [t, g.i64([0, 0, heads * headDim])]);
}

/** One dimension of a value's shape as a 1-element int64 tensor. */
export function dim(g: OnnxGraph, x: string, axis: number): string {
  return g.op("Shape", [x], { start: axis, end: axis + 1 });
}
