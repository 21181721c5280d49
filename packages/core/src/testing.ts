/**
 * Test helpers of the workspace (the `@lm4lv/core/testing` subpath; not part of the public API):
 * tolerance checks, reference cases stored in a fixture's `cases.safetensors`, temporary folders.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SafetensorsFile } from "./safetensors.js";

/** One stored tensor of a reference case. */
export interface CaseTensor {
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

/** Largest |a − b| over two arrays of equal length (NaN when either holds a NaN the other has not). */
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

/** One tensor (`<case>/inputs/x`, `<case>/outputs/y`) of `<dir>/cases.safetensors`. */
export function caseTensor(dir: string, key: string): CaseTensor {
  const f = SafetensorsFile.open(join(dir, "cases.safetensors"));
  try {
    const t = f.read(key);
    return { shape: t.shape, data: t.data };
  } finally {
    f.close();
  }
}

/** All tensors of `<dir>/cases.safetensors` under `<caseName>/`, keyed by `inputs/x` / `outputs/y`. */
export function readCase(dir: string, caseName: string): Map<string, CaseTensor> {
  const f = SafetensorsFile.open(join(dir, "cases.safetensors"));
  try {
    const out = new Map<string, CaseTensor>();
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

/** A new empty folder under the system's temporary folder, named `lm4lv-<tag>-XXXXXX`. */
export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `lm4lv-${tag}-`));
}
