/**
 * @lm4lv/mae benchmarks: MAE-Base-shaped (224/16, random weights) encode and decode latency per
 * image on wasm with the stock and the re-registered BatchMatMul, and on the cpu backend.
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, registerFastWasmBatchMatMul, unregisterFastWasmBatchMatMul } from "@lm4lv/core";
import { ViTMAE, vitMAEPreset } from "@lm4lv/mae";
import { printTable, time, type Row } from "./harness.js";

export async function benchMae(opts: { cpu?: boolean } = {}): Promise<Row[]> {
  const rows: Row[] = [];
  const config = vitMAEPreset("mae-base");
  const measure = async (label: string, mae: ViTMAE) => {
    const px = tf.randomNormal([1, 3, 224, 224]) as tf.Tensor4D;
    const feats = mae.encodeSync(px);
    const enc = await time(() => { const f = mae.encodeSync(px); f.dataSync(); f.dispose(); }, { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 8000 });
    const dec = await time(() => { const p = mae.decodeSync(feats); p.dataSync(); p.dispose(); }, { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 6000 });
    // encoder ≈ 2·params·tokens FLOPs (+ attention), decoder likewise
    rows.push({ backend: label, "encode ms/image": enc.medianMs, "decode ms/image": dec.medianMs });
    console.log(`  ${label}: encode ${enc.medianMs.toFixed(0)} ms, decode ${dec.medianMs.toFixed(0)} ms (${enc.runs}/${dec.runs} runs)`);
    tf.dispose([px, feats]);
  };
  await initBackend("wasm");
  const mae = ViTMAE.fromConfig(config, 0);
  unregisterFastWasmBatchMatMul();
  await measure("wasm, stock BatchMatMul", mae);
  registerFastWasmBatchMatMul();
  await measure("wasm, transpose-first BatchMatMul", mae);
  mae.dispose();
  if (opts.cpu ?? process.env.LM4LV_BENCH_CPU !== "0") {
    await initBackend("cpu");
    const maeCpu = ViTMAE.fromConfig(config, 0);
    await measure("cpu (plain JS)", maeCpu);
    maeCpu.dispose();
    await initBackend("wasm");
  }
  const base = rows[0];
  for (const r of rows) r["encode vs stock wasm"] = `${((base["encode ms/image"] as number) / (r["encode ms/image"] as number)).toFixed(2)}×`;
  printTable("ViTMAE-Base (224/16, random weights), batch 1, median", rows);
  return rows;
}
