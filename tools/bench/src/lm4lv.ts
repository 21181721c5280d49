/**
 * LM4LV end to end on the embedded default (64 px mae-tiny, 7.0M-parameter lm-wide; the shipped denoise checkpoint):
 * training step time (batch 4) split into MAE encoding and the LM forward+backward, and
 * inference seconds per image on tfjs and ONNX Runtime, split into MAE and LM time.
 */
import * as tf from "@tensorflow/tfjs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend, readImage, type RgbImage } from "@lm4lv/core";
import { degrade } from "@lm4lv/data";
import { LM4LV } from "@lm4lv/pipeline";
import { withOrtEngine } from "@lm4lv/onnx";
import { printTable, time, type Row } from "./harness.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export async function benchLm4lv(): Promise<Row[]> {
  const backend = await initBackend("wasm");
  const ckpt = join(ROOT, "models/lm4lv-tiny/denoise");
  const model = await LM4LV.fromCheckpoint(ckpt);
  const clean = await readImage(join(ROOT, "assets/test-images/coffee.png"));
  const pairs: { lq: RgbImage; hq: RgbImage }[] = [];
  for (let i = 0; i < 4; i++) pairs.push({ lq: await degrade("denoise", clean, i), hq: clean });
  const vars = model.adapters.namedVariables();
  const rows: Row[] = [];

  // training: one optimiser step's gradient of a batch of 4, and its MAE share
  const encode = await time(() => { const f = model.encodeSync([...pairs.map((p) => p.lq), ...pairs.map((p) => p.hq)]); f.dataSync(); f.dispose(); }, { budgetMs: 3000 });
  const step = await time(() => {
    const { value, grads } = tf.variableGrads(() => model.loss(pairs).loss, Object.values(vars));
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  }, { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 10000 });
  rows.push({ what: `training step, batch 4 (tfjs-${backend})`, "ms": step.medianMs, "MAE encode ms": encode.medianMs, "LM fwd+bwd ms": step.medianMs - encode.medianMs, "pairs/s": 4000 / step.medianMs, "LM share": `${(100 * (1 - encode.medianMs / step.medianMs)).toFixed(0)} %` });

  // inference: encode + generate 65 tokens + decode, tfjs vs ORT; MAE part = encode + decode alone
  const lq = pairs[0].lq;
  const measureInfer = async (label: string, m: LM4LV) => {
    const total = await time(async () => { const r = await m.restore(lq); r.features.dispose(); }, { warmup: 1, minRuns: 3, maxRuns: 10, budgetMs: 6000 });
    const mae = await time(() => m.reconstruct([lq]), { warmup: 1, minRuns: 3, maxRuns: 20, budgetMs: 3000 });
    rows.push({ what: `inference, 1 image (${label})`, ms: total.medianMs, "MAE encode ms": `${mae.medianMs.toFixed(1)} (enc+dec)`, "LM fwd+bwd ms": "", "pairs/s": 1000 / total.medianMs, "LM share": `${(100 * (1 - mae.medianMs / total.medianMs)).toFixed(0)} %` });
  };
  await measureInfer(`tfjs-${backend}`, model);
  const { model: ort } = await withOrtEngine(model, ckpt);
  await measureInfer("onnxruntime, folded visual step", ort);
  printTable("LM4LV on the embedded default (64 px, 65 visual tokens, 7.0M LM), median", rows);
  return rows;
}
