/** Shared helpers of this package's tests (not exported). */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { SafetensorsFile } from "@lm4lv/core";
import * as tf from "@tensorflow/tfjs";

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "vit_mae_tiny");

/** All tensors of `cases.safetensors` under `<caseName>/`, keyed by `inputs/x` / `outputs/y`. */
export function readCase(caseName: string): Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }> {
  const f = SafetensorsFile.open(join(FIXTURE_DIR, "cases.safetensors"));
  try {
    const out = new Map<string, { shape: number[]; data: Float32Array | Int32Array | Uint8Array }>();
    for (const k of f.keys()) {
      if (!k.startsWith(`${caseName}/`)) continue;
      const t = f.read(k);
      out.set(k.slice(caseName.length + 1), { shape: t.shape, data: t.data });
    }
    return out;
  } finally {
    f.close();
  }
}

/** Largest |a − b| (NaN if either has a NaN where the other has not). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

export function data(t: tf.Tensor): Float32Array | Int32Array {
  return t.dataSync() as Float32Array | Int32Array;
}
