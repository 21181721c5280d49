/**
 * Where is an LM4LV identity copy lost? Linear probes on the frozen LM's residual stream.
 *
 * Teacher-forced identity sequences (the training layout, the clean image as both input and output)
 * go through the tfjs LM with every hidden state kept. At each output visual position k − 1 the
 * probe fits a ridge regression (float64, Cholesky) from hidden_states[l] to the target MAE feature
 * of token k, on fit crops, and scores it on held-out crops: relative feature MSE and the PSNR of the
 * decoded prediction (spec §9). hidden_states[0] is the input embedding of token k − 1 alone (what
 * the previous patch predicts); later layers add what the heads copied from input token k. The
 * trained de-adapter on the final hidden state is the row to compare with; a ridge refit of the
 * de-adapter's own outputs checks the solver (its error must be ~0).
 *
 *   node tools/bench/dist/copy-probe.js [--checkpoint models/lm4lv-tiny/identity] [--fit DIR] [--val DIR] [--fit-count 150]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import * as tf from "@tensorflow/tfjs";
import { initBackend, nonNegativeNumber, positiveInt, type RgbImage } from "@lm4lv/core";
import { psnr } from "@lm4lv/metrics";
import { assembleInputsEmbedsSync } from "@lm4lv/adapters";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LV } from "@lm4lv/pipeline";
import { sampleImages } from "./images.js";
import { isMain, numeric, parseCommandLine, runScript, usageText } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

type Rows = number[][];

interface Collected {
  /** [layer] → rows (one per output visual position of every crop) of the hidden state. */
  layers: Rows[];
  /** Target MAE features, one row per output visual position. */
  targets: Rows;
  /** The trained de-adapter's prediction from the final hidden state. */
  trained: Rows;
  images: RgbImage[];
}

function collect(model: LM4LV, images: RgbImage[]): Collected {
  const lm = model.models.lm;
  if (!(lm instanceof LlamaForCausalLM)) throw new Error("copy-probe needs the tfjs LM (hidden states)");
  const seq = model.layout();
  const positions = seq.visionTargets.map((t) => t.position);
  const out: Collected = { layers: [], targets: [], trained: [], images };
  for (const img of images) {
    tf.tidy(() => {
      const feats = model.encodeSync([img]).squeeze([0]) as tf.Tensor2D; // [1+N, Dv]: identity, so input = target
      const rows = [feats, feats];
      const embeds = assembleInputsEmbedsSync(lm, seq, rows, model.adapters); // [1, T, Dl]
      const res = lm.forwardSync({ inputsEmbeds: embeds, outputHiddenStates: true });
      const p = tf.tensor1d(positions, "int32");
      res.hiddenStates!.forEach((h, l) => (out.layers[l] ??= []).push(...(tf.gather(h.squeeze([0]), p).arraySync() as Rows))); // [1+N, Dl]
      out.targets.push(...(rows[1].arraySync() as Rows));
      out.trained.push(...(model.adapters.deAdapt(tf.gather(res.lastHiddenState.squeeze([0]), p)).arraySync() as Rows));
    });
  }
  return out;
}

/** Ridge regression with a bias column: argmin |XW − Y|² + λ·n·|W|², solved in float64 by Cholesky. */
function ridge(X: Rows, Y: Rows, lambda: number): (x: number[]) => number[] {
  const n = X.length, d = X[0].length + 1, o = Y[0].length;
  const A = new Float64Array(d * d), B = new Float64Array(d * o);
  const x = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    x.set(X[r]);
    x[d - 1] = 1;
    for (let i = 0; i < d; i++) {
      const xi = x[i];
      for (let j = i; j < d; j++) A[i * d + j] += xi * x[j];
      for (let k = 0; k < o; k++) B[i * o + k] += xi * Y[r][k];
    }
  }
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) A[i * d + j] = A[j * d + i];
    A[i * d + i] += lambda * n;
  }
  for (let j = 0; j < d; j++) {
    let s = A[j * d + j];
    for (let k = 0; k < j; k++) s -= A[j * d + k] ** 2;
    if (!(s > 0)) throw new Error(`ridge: matrix not positive definite at column ${j}`);
    const ljj = Math.sqrt(s);
    A[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = A[i * d + j];
      for (let k = 0; k < j; k++) t -= A[i * d + k] * A[j * d + k];
      A[i * d + j] = t / ljj;
    }
  }
  const y = new Float64Array(d);
  for (let k = 0; k < o; k++) {
    for (let i = 0; i < d; i++) {
      let t = B[i * o + k];
      for (let j = 0; j < i; j++) t -= A[i * d + j] * y[j];
      y[i] = t / A[i * d + i];
    }
    for (let i = d - 1; i >= 0; i--) {
      let t = y[i];
      for (let j = i + 1; j < d; j++) t -= A[j * d + i] * y[j];
      y[i] = t / A[i * d + i];
    }
    for (let i = 0; i < d; i++) B[i * o + k] = y[i];
  }
  return (row) => {
    const res = new Array<number>(o).fill(0);
    for (let i = 0; i < d; i++) {
      const xi = i < d - 1 ? row[i] : 1;
      for (let k = 0; k < o; k++) res[k] += xi * B[i * o + k];
    }
    return res;
  };
}

function relativeMse(pred: Rows, target: Rows): number {
  let se = 0, ss = 0;
  pred.forEach((p, r) => p.forEach((v, k) => ((se += (v - target[r][k]) ** 2), (ss += target[r][k] ** 2))));
  return se / ss;
}

async function decodedPsnr(model: LM4LV, pred: Rows, images: RgbImage[]): Promise<number> {
  const N = model.numVisualTokens;
  let sum = 0;
  for (let i = 0; i < images.length; i++) {
    const f = tf.tensor3d([pred.slice(i * N, (i + 1) * N)]); // [1, 1+N, Dv]
    const [img] = await model.decode(f);
    f.dispose();
    sum += psnr(img, images[i]);
  }
  return sum / images.length;
}

/** The options of copy-probe: the one place each default lives. */
export const COPY_PROBE_OPTIONS = z.object({
  checkpoint: z.string().default(join(ROOT, "models/lm4lv-tiny/identity")).describe("an identity checkpoint (tfjs LM)"),
  fit: z.string().default(join(ROOT, ".cache/data/crops/val")).describe("crops the probes are fitted on"),
  val: z.string().default(join(ROOT, ".cache/data/valsub")).describe("held-out crops the probes are scored on"),
  fitCount: positiveInt().default(150).describe("fit crops used (spread over the folder)"),
  lambda: z.preprocess(numeric, nonNegativeNumber()).default(1e-4).describe("ridge penalty"),
});

export type CopyProbeOptions = z.output<typeof COPY_PROBE_OPTIONS>;

const USAGE = usageText("usage: node tools/bench/dist/copy-probe.js [options]", COPY_PROBE_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseCopyProbeArgs(argv: string[]): CopyProbeOptions | undefined {
  const { options, help } = parseCommandLine(argv, COPY_PROBE_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseCopyProbeArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  await initBackend();
  const ckpt = resolve(options.checkpoint);
  const model = await LM4LV.fromCheckpoint(ckpt);
  const valDir = resolve(options.val);
  const val = await sampleImages(valDir, 1000);
  const fit = await sampleImages(resolve(options.fit), options.fitCount, { exclude: new Set(val.files) });
  const lambda = options.lambda;
  const tr = collect(model, fit.images);
  const ev = collect(model, val.images);
  const check = ridge(tr.layers[tr.layers.length - 1], tr.trained, 1e-9);
  const checkErr = relativeMse(ev.layers[ev.layers.length - 1].map(check), ev.trained);
  console.log(`${ckpt}: teacher-forced identity; ridge (λ ${lambda}) fit on ${tr.targets.length} positions of ${fit.images.length} crops, scored on ${ev.targets.length} positions of ${val.images.length} crops (${valDir})`);
  console.log(`solver check: ridge refit of the trained de-adapter's outputs, relative error ${checkErr.toExponential(2)}`);
  console.log("| readout | relative feature MSE | PSNR (dB) |\n| --- | --- | --- |");
  console.log(`| trained de-adapter, final hidden state | ${relativeMse(ev.trained, ev.targets).toFixed(4)} | ${(await decodedPsnr(model, ev.trained, ev.images)).toFixed(2)} |`);
  for (let l = 0; l < tr.layers.length; l++) {
    const f = ridge(tr.layers[l], tr.targets, lambda);
    const pred = ev.layers[l].map(f);
    const what = l === 0 ? " (embedding of token k − 1)" : l === tr.layers.length - 1 ? " (final norm)" : "";
    console.log(`| ridge, hidden_states[${l}]${what} | ${relativeMse(pred, ev.targets).toFixed(4)} | ${(await decodedPsnr(model, pred, ev.images)).toFixed(2)} |`);
  }
  const cat = (c: Collected) => c.layers[0].map((_, r) => c.layers.flatMap((L) => L[r]));
  const all = ridge(cat(tr), tr.targets, lambda);
  const pred = cat(ev).map(all);
  console.log(`| ridge, all hidden states together | ${relativeMse(pred, ev.targets).toFixed(4)} | ${(await decodedPsnr(model, pred, ev.images)).toFixed(2)} |`);
}

if (isMain("copy-probe")) runScript(main, USAGE);
