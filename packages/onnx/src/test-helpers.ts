/** Shared by this package's tests only (not exported). */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SafetensorsFile } from "@lm4lv/core";

/** The tiny HF checkpoints and their reference cases (see fixtures/README.md). */
export { VIT_MAE_TINY_DIR as VIT_MAE_TINY } from "@lm4lv/mae/testing";
export { LLAMA_TINY_DIR as LLAMA_TINY } from "@lm4lv/llm/testing";

/** One tensor of a fixture's cases.safetensors. */
export function caseTensor(dir: string, key: string): { shape: number[]; data: Float32Array | Int32Array | Uint8Array } {
  const f = SafetensorsFile.open(join(dir, "cases.safetensors"));
  try {
    const t = f.read(key);
    return { shape: t.shape, data: t.data };
  } finally {
    f.close();
  }
}

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `lm4lv-onnx-${tag}-`));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
