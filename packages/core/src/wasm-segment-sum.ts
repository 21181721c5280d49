/**
 * UnsortedSegmentSum for the tfjs wasm backend, which has none. Every `tf.gather` gradient
 * needs it (gathering hidden-state rows for a loss, embedding lookups), so without it training
 * on wasm fails with "Kernel 'UnsortedSegmentSum' not registered". Computed in JS on the
 * data read from the wasm heap: out[segmentIds[i], ...] += x[i, ...].
 */
import * as tf from "@tensorflow/tfjs";

interface WasmBackendLike {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: ArrayLike<number>): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
}

export function registerWasmUnsortedSegmentSum(): boolean {
  if (tf.getKernel("UnsortedSegmentSum", "wasm")) return true;
  tf.registerKernel({
    kernelName: "UnsortedSegmentSum",
    backendName: "wasm",
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
        backend: WasmBackendLike;
        attrs: { numSegments: number };
      };
      const { x, segmentIds } = inputs;
      const { numSegments } = attrs;
      // segmentIds covers the leading dims of x; the rest is one row
      const lead = segmentIds.shape.reduce((a, b) => a * b, 1);
      const rowShape = x.shape.slice(segmentIds.shape.length);
      const row = rowShape.reduce((a, b) => a * b, 1);
      const xs = backend.readSync(x.dataId);
      const ids = backend.readSync(segmentIds.dataId);
      const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);
      const o = backend.typedArrayFromHeap(out);
      o.fill(0);
      for (let i = 0; i < lead; i++) {
        const s = ids[i];
        if (s < 0 || s >= numSegments) continue; // as TF: out-of-range ids are dropped
        const src = i * row, dst = s * row;
        for (let j = 0; j < row; j++) o[dst + j] += xs[src + j];
      }
      return out;
    },
  });
  return true;
}
