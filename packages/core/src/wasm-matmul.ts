/**
 * A faster BatchMatMul for the tfjs wasm backend.
 *
 * The wasm kernel is quick for plain A·B but 10–30× slower when asked for Aᵀ or Bᵀ,
 * which every matmul gradient asks for. This re-registers BatchMatMul so transposed
 * operands are first materialised by the wasm Transpose kernel, then multiplied plainly.
 */
import * as tf from "@tensorflow/tfjs";

type KernelConfig = NonNullable<ReturnType<typeof tf.getKernel>>;
type TensorInfo = tf.TensorInfo;

let original: KernelConfig | undefined;

function transposeLast2(t: TensorInfo, backend: unknown, transpose: KernelConfig): TensorInfo {
  const rank = t.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return transpose.kernelFunc({ inputs: { x: t }, backend, attrs: { perm } } as never) as TensorInfo;
}

/** Idempotent. Returns false when the wasm backend has no BatchMatMul kernel to wrap. */
export function registerFastWasmBatchMatMul(): boolean {
  if (original) return true;
  const base = tf.getKernel("BatchMatMul", "wasm");
  const transpose = tf.getKernel("Transpose", "wasm");
  if (!base || !transpose) return false;
  original = base;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    kernelName: "BatchMatMul",
    backendName: "wasm",
    setupFunc: base.setupFunc,
    disposeFunc: base.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { a: TensorInfo; b: TensorInfo };
        backend: { disposeData(id: object): void };
        attrs: { transposeA: boolean; transposeB: boolean };
      };
      if (!attrs.transposeA && !attrs.transposeB) return base.kernelFunc(args);
      const a = attrs.transposeA ? transposeLast2(inputs.a, backend, transpose) : inputs.a;
      const b = attrs.transposeB ? transposeLast2(inputs.b, backend, transpose) : inputs.b;
      const out = base.kernelFunc({
        ...args,
        inputs: { a, b },
        attrs: { ...attrs, transposeA: false, transposeB: false },
      } as never);
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  });
  return true;
}

/** Restores the stock wasm BatchMatMul (benchmarks compare both). */
export function unregisterFastWasmBatchMatMul(): void {
  if (!original) return;
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel(original);
  original = undefined;
}
