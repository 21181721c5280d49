/**
 * How many dimensions of the MAE feature does a copy have to carry? Projects every feature token of
 * held-out crops on the top-k principal directions of the training crops' features (k = 8 … all),
 * decodes with the frozen MAE decoder and reports PSNR (spec §9) against the clean crops. One attention
 * head of the embedded LM (models/lm-wide, 16 heads of 32) moves head_dim = 32 numbers per token, so this
 * bounds what a single copying head can reconstruct.
 *
 *   node tools/bench/dist/feature-subspace.js [--checkpoint models/lm4lv-tiny/identity] [--train DIR] [--val DIR]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "@lm4lv/core";
import { psnr } from "@lm4lv/metrics";
import { LM4LV } from "@lm4lv/pipeline";
import { sampleImages } from "./images.js";
import { isMain, parseCommandLine, runScript, usageText } from "./options.js";
import { symmetricEigen } from "./linalg.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** The options of feature-subspace: the one place each default lives. */
export const FEATURE_SUBSPACE_OPTIONS = z.object({
  checkpoint: z.string().default(join(ROOT, "models/lm4lv-tiny/identity")).describe("a checkpoint (its MAE is used)"),
  train: z.string().default(join(ROOT, ".cache/data/crops/train")).describe("crops the principal directions come from"),
  val: z.string().default(join(ROOT, ".cache/data/crops/val")).describe("held-out crops that are projected and decoded"),
});

export type FeatureSubspaceOptions = z.output<typeof FEATURE_SUBSPACE_OPTIONS>;

const USAGE = usageText("usage: node tools/bench/dist/feature-subspace.js [options]", FEATURE_SUBSPACE_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseFeatureSubspaceArgs(argv: string[]): FeatureSubspaceOptions | undefined {
  const { options, help } = parseCommandLine(argv, FEATURE_SUBSPACE_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseFeatureSubspaceArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  await initBackend();
  const model = await LM4LV.fromCheckpoint(resolve(options.checkpoint));
  const size = model.imageSize;
  const { images: train } = await sampleImages(resolve(options.train), 400, { step: 53, size });
  const { images: val } = await sampleImages(resolve(options.val), 24, { step: 97, size });
  const trainF = await model.encode(train); // [B, 1+N, D]
  const D = trainF.shape[2];
  const rows = trainF.reshape([-1, D]).arraySync() as number[][];
  trainF.dispose();
  const mean = new Float64Array(D);
  for (const r of rows) for (let j = 0; j < D; j++) mean[j] += r[j] / rows.length;
  const cov = new Float64Array(D * D);
  for (const r of rows) for (let i = 0; i < D; i++) { const di = r[i] - mean[i]; for (let j = 0; j < D; j++) cov[i * D + j] += (di * (r[j] - mean[j])) / rows.length; }
  const { values: eig, vectors } = symmetricEigen(cov, D);
  const total = eig.reduce((s, x) => s + x, 0);
  const valF = await model.encode(val);
  console.log(`MAE features: ${D} wide; PCA of ${rows.length} tokens from ${train.length} training crops; ${val.length} held-out crops`);
  console.log("| dimensions kept | variance kept | PSNR of the decoded projection (dB) |\n| --- | --- | --- |");
  for (const k of [8, 16, 32, 64, 96, 128, D]) {
    const basis = tf.tensor2d(Array.from({ length: D }, (_, r) => Array.from({ length: k }, (_, c) => vectors[c][r]))); // (D, k)
    const mu = tf.tensor1d(Array.from(mean));
    const proj = tf.tidy(() => {
      const x = valF.reshape([-1, D]).sub(mu);
      return tf.matMul(tf.matMul(x, basis), basis, false, true).add(mu).reshape(valF.shape) as tf.Tensor3D;
    });
    const decoded = await model.decode(proj);
    tf.dispose([basis, mu, proj]);
    const score = decoded.reduce((s, img, i) => s + psnr(img, val[i]), 0) / val.length;
    const kept = eig.slice(0, k).reduce((s, x) => s + x, 0) / total;
    console.log(`| ${k} | ${(kept * 100).toFixed(2)} % | ${score.toFixed(2)} |`);
  }
  valF.dispose();
}

if (isMain("feature-subspace")) runScript(main, USAGE);
