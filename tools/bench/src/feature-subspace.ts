/**
 * How many dimensions of the MAE feature does a copy have to carry? Projects every feature token of
 * held-out crops on the top-k principal directions of the training crops' features (k = 8 … all),
 * decodes with the frozen MAE decoder and reports PSNR (spec §9) against the clean crops. One attention
 * head of the embedded LM (models/lm-wide, 16 heads of 32) moves head_dim = 32 numbers per token, so this
 * bounds what a single copying head can reconstruct.
 *
 * `--pixels p` does the same on raw p×p pixel patches instead of MAE features (each patch a token of
 * 3·p² values, rebuilt in place): a guide to how many directions a token of another patch size needs.
 *
 *   node tools/bench/dist/feature-subspace.js [--checkpoint models/lm4lv-tiny/identity] [--train DIR] [--val DIR] [--pixels 4]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import * as tf from "@tensorflow/tfjs";
import { initBackend, positiveInt, type RgbImage } from "@lm4lv/core";
import { imagesToTensor, patchify, tensorToImages, unpatchify } from "@lm4lv/mae";
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
  pixels: positiveInt().optional().describe("PCA of raw pixel patches of this size instead of MAE features"),
});

export type FeatureSubspaceOptions = z.output<typeof FEATURE_SUBSPACE_OPTIONS>;

const USAGE = usageText("usage: node tools/bench/dist/feature-subspace.js [options]", FEATURE_SUBSPACE_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseFeatureSubspaceArgs(argv: string[]): FeatureSubspaceOptions | undefined {
  const { options, help } = parseCommandLine(argv, FEATURE_SUBSPACE_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

/** Mean and principal directions (decreasing variance) of D-wide rows. */
export function pca(rows: readonly ArrayLike<number>[], D: number): { mean: Float64Array; variances: number[]; directions: Float64Array[] } {
  const mean = new Float64Array(D);
  for (const r of rows) for (let j = 0; j < D; j++) mean[j] += r[j] / rows.length;
  const cov = new Float64Array(D * D);
  for (const r of rows) for (let i = 0; i < D; i++) { const di = r[i] - mean[i]; for (let j = 0; j < D; j++) cov[i * D + j] += (di * (r[j] - mean[j])) / rows.length; }
  const { values, vectors } = symmetricEigen(cov, D);
  return { mean, variances: values, directions: vectors };
}

/** `row` projected on the first k `directions` around `mean` (all float64). */
export function project(row: ArrayLike<number>, mean: Float64Array, directions: readonly Float64Array[], k: number): Float64Array {
  const out = Float64Array.from(mean);
  for (let c = 0; c < k; c++) {
    const v = directions[c];
    let a = 0;
    for (let j = 0; j < mean.length; j++) a += (row[j] - mean[j]) * v[j];
    for (let j = 0; j < mean.length; j++) out[j] += a * v[j];
  }
  return out;
}

/** The `--pixels p` table: raw p×p patches of the training crops → PCA → held-out crops rebuilt from k directions. */
function pixelTable(train: RgbImage[], val: RgbImage[], p: number): void {
  const D = 3 * p * p;
  const patches = (imgs: RgbImage[]) => tf.tidy(() => patchify(imagesToTensor(imgs), p).arraySync()); // [B][N][p·p·3]
  const { mean, variances, directions } = pca(patches(train).flat(), D);
  const valPatches = patches(val);
  const { height: H, width: W } = val[0];
  const total = variances.reduce((s, x) => s + x, 0);
  console.log(`raw ${p}×${p} pixel patches: ${D} values per token; PCA of ${train.length} training crops; ${val.length} held-out crops`);
  console.log("| dimensions kept per token | variance kept | PSNR of the rebuilt crop (dB) |\n| --- | --- | --- |");
  for (const k of [8, 12, 16, 24, 32, 48, 64].filter((k) => k <= D)) {
    const kept = valPatches.map((img) => img.map((t) => Array.from(project(t, mean, directions, k))));
    const rebuilt = tf.tidy(() => unpatchify(tf.tensor3d(kept), p, 3, [H / p, W / p]));
    const score = tensorToImages(rebuilt).reduce((s, img, i) => s + psnr(img, val[i]), 0) / val.length;
    rebuilt.dispose();
    console.log(`| ${k} | ${((variances.slice(0, k).reduce((s, x) => s + x, 0) / total) * 100).toFixed(2)} % | ${score.toFixed(2)} |`);
  }
}

async function main(): Promise<void> {
  const options = parseFeatureSubspaceArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  await initBackend();
  const model = await LM4LV.fromCheckpoint(resolve(options.checkpoint));
  const size = model.tileSize; // the MAE's input (one tile of a tiled model)
  const { images: train } = await sampleImages(resolve(options.train), 400, { step: 53, size });
  const { images: val } = await sampleImages(resolve(options.val), 24, { step: 97, size });
  if (options.pixels) return pixelTable(train, val, options.pixels);
  const trainF = await model.encode(train); // [B, 1+N, D]
  const D = trainF.shape[2];
  const rows = trainF.reshape([-1, D]).arraySync() as number[][];
  trainF.dispose();
  const { mean, variances: eig, directions: vectors } = pca(rows, D);
  const total = eig.reduce((s, x) => s + x, 0);
  const valF = await model.encode(val);
  console.log(`MAE features: ${D} wide; PCA of ${rows.length} tokens from ${train.length} training crops; ${val.length} held-out crops`);
  console.log("| dimensions kept | variance kept | PSNR of the decoded projection (dB) |\n| --- | --- | --- |");
  for (const k of [8, 12, 16, 32, 64, 96, 128, D]) {
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
