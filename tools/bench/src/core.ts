/** Benchmarks of @lm4lv/core: the wasm BatchMatMul registration and safetensors load throughput. */
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, registerFastWasmBatchMatMul, unregisterFastWasmBatchMatMul, SafetensorsCheckpoint, writeSafetensors } from "@lm4lv/core";
import { printTable, time, type Row } from "./harness.js";

/** Stock vs re-registered wasm BatchMatMul on attention-shaped products (12 heads, 197 tokens, head 64). */
export async function benchMatMul(): Promise<Row[]> {
  await initBackend("wasm");
  const [B, T, D] = [12, 197, 64];
  const q = tf.randomNormal([B, T, D]);
  const k = tf.randomNormal([B, T, D]);
  const cases: [string, () => tf.Tensor][] = [
    ["A·B   [12,197,64]·[12,64,197]", () => tf.matMul(q, k.transpose([0, 2, 1]))],
    ["A·Bᵀ  (attention scores)", () => tf.matMul(q, k, false, true)],
    ["Aᵀ·B  (weight gradient)", () => tf.matMul(q, k, true, false)],
  ];
  // a transformer-block-sized backward: d/dX of sum(gelu(X·W1)·W2) with X [197,768]
  const X = tf.randomNormal([197, 768]);
  const W1 = tf.randomNormal([768, 3072], 0, 0.02);
  const W2 = tf.randomNormal([3072, 768], 0, 0.02);
  const mlpGrad = () => {
    const g = tf.grads((x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor) => tf.matMul(tf.relu(tf.matMul(x as tf.Tensor2D, w1 as tf.Tensor2D)), w2 as tf.Tensor2D).sum());
    return g([X, W1, W2]);
  };
  const rows: Row[] = [];
  const measure = async (fn: () => tf.Tensor | tf.Tensor[]) =>
    time(() => {
      const out = fn();
      for (const t of Array.isArray(out) ? out : [out]) { t.dataSync(); t.dispose(); }
    }, { budgetMs: 2000 });
  for (const [name, fn] of [...cases, ["MLP 768→3072→768 forward+backward", mlpGrad] as [string, () => tf.Tensor[]]]) {
    unregisterFastWasmBatchMatMul();
    const stock = await measure(fn);
    registerFastWasmBatchMatMul();
    const fast = await measure(fn);
    rows.push({ op: name, "stock ms": stock.medianMs, "registered ms": fast.medianMs, speedup: `${(stock.medianMs / fast.medianMs).toFixed(1)}×` });
  }
  tf.dispose([q, k, X, W1, W2]);
  printTable("wasm BatchMatMul: stock kernel vs transpose-first registration (median)", rows);
  return rows;
}

/** Write then read a ~256 MiB checkpoint in F32, F16 and BF16; MB/s of file bytes read and converted to float32. */
export async function benchSafetensors(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "lm4lv-bench-st-"));
  const rows: Row[] = [];
  const n = 16 * 1024 * 1024; // 64 MiB of float32 per tensor
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i);
  for (const dtype of ["F32", "F16", "BF16"] as const) {
    const path = join(dir, `${dtype}.safetensors`);
    const tensors: Record<string, { shape: number[]; data: Float32Array; dtype: typeof dtype }> = {};
    for (let i = 0; i < 4; i++) tensors[`layer.${i}.weight`] = { shape: [4096, n / 4096], data, dtype };
    writeSafetensors(path, tensors);
    const ck = SafetensorsCheckpoint.open(path);
    const bytes = ck.keys().reduce((a, k) => a + ck.entry(k).end - ck.entry(k).begin, 0);
    const t = await time(() => { for (const k of ck.keys()) ck.readFloat32(k); }, { warmup: 1, minRuns: 3, budgetMs: 4000 });
    ck.close();
    rows.push({ dtype, "file MiB": bytes / 2 ** 20, "read+convert ms": t.medianMs, "MB/s (file bytes)": bytes / 1e6 / (t.medianMs / 1000), "M params/s": (4 * n) / 1e6 / (t.medianMs / 1000) });
  }
  rmSync(dir, { recursive: true, force: true });
  printTable("safetensors load throughput (page cache warm, median)", rows);
  return rows;
}
