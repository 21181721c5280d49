/**
 * Transformer pieces written as ONNX nodes on an `OnnxGraph`. Every helper takes value names
 * and returns the name of its result; shapes in comments use B batch, T positions, D width.
 * The patterns are the plain-op forms that ONNX Runtime's optimizer fuses (LayerNormalization,
 * Gelu from Erf, SimplifiedLayerNormalization from the RMSNorm chain, MatMul + Add).
 */
import { f32ToF16 } from "@lm4lv/core";
import type { OnnxGraph } from "./graph.js";
import { blockCount, checkBlockSize, int4MatMulNBits, int8BlockSize, int8MatMulNBits } from "./quantize.js";
import type { MatMulNBitsWeights } from "./quantize.js";
import { DEFAULT_INT4_BLOCK_SIZE, WEIGHT_FORMATS, type WeightFormat } from "./available.js";

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

/** How the weights of a linear layer are stored in the graph: see `WeightFormat` (available.ts). */
export { WEIGHT_FORMATS, type WeightFormat };

/** Block size of int4 weights when none is given (`WeightLinearOptions.int4BlockSize`). */
export const INT4_BLOCK_SIZE = DEFAULT_INT4_BLOCK_SIZE;

/**
 * MatMulNBits `accuracy_level`: 4 lets ONNX Runtime quantize the activations to int8 per block
 * and run an integer kernel (several times faster on CPU; its 8-bit kernel has no fast float
 * path); 0 keeps the activations in float32 (slower; what the packing tests use).
 */
export const DEFAULT_ACCURACY_LEVEL = 4;

/** How `weightLinear` stores quantized weights. */
export interface WeightLinearOptions {
  /** MatMulNBits accuracy_level for int8 / int4 (default DEFAULT_ACCURACY_LEVEL). */
  accuracyLevel?: number;
  /** int4 weights per block along K: a power of two ≥ 16 (default INT4_BLOCK_SIZE; the exporter takes 32, 64, 128). */
  int4BlockSize?: number;
}

/** A linear layer to emit: its weights are read only when the graph is written. */
export interface WeightLinear {
  /** Initializer name prefix (e.g. `model.layers.0.mlp.up_proj`). */
  name: string;
  /** Input features K. */
  inDim: number;
  /** Output features N. */
  outDim: number;
  /** The weight in PyTorch layout `[N, K]`. */
  weight: () => Float32Array;
  /** The weight as a MatMul kernel `[K, N]`. */
  kernel: () => Float32Array;
  /** Bias `[N]`, if any (kept float32). */
  bias?: () => Float32Array;
}

/**
 * Several lazy initializers produced by one computation (codes, scales and zero points of one
 * quantization): computed when the first is written; each part is released once handed out, the
 * whole result when every registered part was.
 */
function sharedParts<T extends object>(compute: () => T): <K extends keyof T>(key: K) => () => T[K] {
  const registered = new Set<keyof T>();
  let parts: Map<keyof T, unknown> | undefined;
  return (key) => {
    registered.add(key);
    return () => {
      if (!parts || !parts.has(key)) {
        const all = compute();
        parts = new Map([...registered].map((k) => [k, all[k]]));
      }
      const v = parts.get(key) as T[typeof key];
      parts.delete(key);
      if (parts.size === 0) parts = undefined;
      return v;
    };
  };
}

/**
 * x `[..., K]` → `[..., N]` with the weight stored in `format` (see WeightFormat). In a training
 * graph whose trainable names include `<name>.weight`, that fp32 weight is a graph input in HF
 * layout `[N, K]`. int4 blocks run along K; when K is not a multiple of the block size, the last
 * block is partial (padded with its zero-point code, see quantize.ts).
 */
export function weightLinear(g: OnnxGraph, x: string, w: WeightLinear, format: WeightFormat, opts: WeightLinearOptions = {}): string {
  const accuracyLevel = opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL;
  const int4BlockSize = opts.int4BlockSize ?? INT4_BLOCK_SIZE;
  const { name, inDim: K, outDim: N } = w;
  let y: string;
  switch (format) {
    case "fp32": {
      // trainable (a training graph): the HF weight `<name>.weight` [N, K] is the input, transposed
      // here; frozen: the kernel [K, N] is stored as it is used
      const weight = `${name}.weight`;
      y = g.isTrainable(weight)
        ? g.op("MatMul", [x, g.op("Transpose", [g.param(weight, w.weight, [N, K])], { perm: [1, 0] })])
        : g.op("MatMul", [x, g.param(`${name}.kernel`, w.kernel, [K, N])]);
      break;
    }
    case "fp16": {
      const k16 = g.lazyInitializer(`${name}.kernel_fp16`, "float16", [K, N], () => f32ToF16(w.kernel()));
      y = g.op("MatMul", [x, g.op("Cast", [k16], { to: 1 })]);
      break;
    }
    case "int8":
    case "int4": {
      const bits = format === "int8" ? 8 : 4;
      if (bits === 4) checkBlockSize(`weightLinear ${name}`, int4BlockSize); // now, not when the graph is written
      const q = sharedParts<MatMulNBitsWeights>(() => (bits === 8 ? int8MatMulNBits(w.weight(), N, K) : int4MatMulNBits(w.weight(), N, K, int4BlockSize)));
      const blockSize = bits === 8 ? int8BlockSize(K) : int4BlockSize;
      const nb = blockCount(K, blockSize);
      const inputs = [
        x,
        g.lazyInitializer(`${name}.qweight`, "uint8", [N, nb, (blockSize * bits) / 8], q("b")),
        g.lazyInitializer(`${name}.scales`, "float32", [N, nb], q("scales")),
      ];
      if (bits === 4) inputs.push(g.lazyInitializer(`${name}.zero_points`, "uint8", [N, Math.ceil(nb / 2)], q("zeroPoints") as () => Uint8Array));
      y = g.node("MatMulNBits", inputs, { K, N, bits, block_size: blockSize, accuracy_level: accuracyLevel }, 1, "com.microsoft")[0];
      break;
    }
    default:
      throw new Error(`weight format "${format}" is not one of ${WEIGHT_FORMATS.join(", ")}`);
  }
  return w.bias ? g.op("Add", [y, g.param(`${name}.bias`, w.bias, [N])]) : y;
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
