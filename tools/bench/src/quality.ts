/**
 * pnpm bench quality [--checkpoint=models/lm4lv-tiny/denoise] [--settings=int8,int4,int4-b128]
 *                    [--images=assets/test-images] [--tokens=32] [--threads=N] [--cache=<tmp>/lm4lv-bench-quality]
 *
 * What a weight setting costs in quality against fp32, both on ONNX Runtime. The checkpoint is
 * exported once per setting (`loadOrtLM4LV`; fp32 in <cache>, the others in <cache>/<setting>, never
 * in the checkpoint's own onnx/ folder), then:
 *
 *   LM     the LM4LV step graph run as a text LM (no image) on PROMPTS (BOS + text):
 *          max |Δlogits| and top-1 agreement over every prompt position; greedy agreement over
 *          --tokens tokens after each prompt, teacher-forced on fp32's own greedy tokens (so one
 *          near-tie does not derail the rest), and the free-running prefix that equals fp32's
 *   LM4LV  the test photos degraded as `pnpm bench:tasks` degrades them (seed 1000, the task and
 *          parameters of the checkpoint): mean output PSNR / SSIM (crop 4), its change from fp32,
 *          and the PSNR of each output against fp32's output of the same photo
 *
 * Settings are named as their export folders: fp16, int8, int4 (blocks of 32), int4-b64, int4-b128.
 * A benchmark (minutes of CPU), never a test.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { initBackend, positiveInt, type CausalLM, type RgbImage } from "@lm4lv/core";
import { FolderPairDataset } from "@lm4lv/data";
import { psnr, ssim } from "@lm4lv/metrics";
import { INT4_BLOCK_SIZES, loadOrtLM4LV, WEIGHT_FORMATS, weightSettingName } from "@lm4lv/onnx";
import type { Int4BlockSize, WeightFormat } from "@lm4lv/onnx";
import { printTable, type Row } from "./harness.js";
import { commaList, parseCommandLine, usageText } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Every weight setting but the fp32 reference, by its export folder's name. */
export const QUALITY_SETTINGS = [
  ...WEIGHT_FORMATS.filter((f) => f !== "fp32" && f !== "int4"),
  ...INT4_BLOCK_SIZES.map((b) => weightSettingName("int4", b)),
] as [string, ...string[]];

/** Text prompts (written for this benchmark) continued greedily by the LM. */
export const PROMPTS = [
  "The old lighthouse keeper climbed the stairs each evening, lit the lamp, and watched the ships pass",
  "In the spring the river rose over its banks, and the farmers moved their sheep up to the high fields",
  "She opened the letter slowly, read the first line twice, and then sat down by the window to",
];

/** The options of `pnpm bench quality`: the one place each default lives. */
export const QUALITY_OPTIONS = z.object({
  checkpoint: z.string().default(join(ROOT, "models", "lm4lv-tiny", "denoise")).describe("LM4LV checkpoint (its lm4lv.json names the MAE and the LM)"),
  settings: commaList()
    .pipe(z.array(z.enum(QUALITY_SETTINGS, `expected settings among ${QUALITY_SETTINGS.join(", ")}`)))
    .default(["int8", "int4", "int4-b128"])
    .describe("weight settings compared with fp32, comma-separated"),
  images: z.string().default(join(ROOT, "assets", "test-images")).describe("the clean test photos"),
  tokens: positiveInt().default(32).describe("greedy tokens after each prompt"),
  threads: positiveInt().default(() => cpus().length).describe("ORT intra-op threads"),
  cache: z.string().default(join(tmpdir(), "lm4lv-bench-quality")).describe("where the exports go (one folder per setting)"),
});

export type QualityOptions = z.output<typeof QUALITY_OPTIONS>;

export const QUALITY_USAGE = usageText("usage: pnpm bench quality [--name=value ...]", QUALITY_OPTIONS);

/** argv → typed options; a bad flag throws UsageError naming it. `allow`: flags of other suites named in the same run. */
export function parseQualityArgs(argv: string[], allow: readonly z.ZodObject[] = []): QualityOptions {
  return parseCommandLine(argv, QUALITY_OPTIONS, { allow }).options;
}

/** A setting's name → its export options (`int4-b128` → int4, blocks of 128). */
export function settingOptions(name: string): { quantize: WeightFormat; int4BlockSize?: Int4BlockSize } {
  const m = /^int4-b(\d+)$/.exec(name);
  if (m) return { quantize: "int4", int4BlockSize: Number(m[1]) as Int4BlockSize };
  return { quantize: name as WeightFormat };
}

function argmax(a: Float32Array, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (a[i] > a[best]) best = i;
  return best - from;
}

async function logitsOf(lm: CausalLM, ids: number[]): Promise<Float32Array> {
  const x = tf.tensor2d([ids], [1, ids.length], "int32");
  const out = await lm.forward({ inputIds: x });
  const l = Float32Array.from(out.logits.dataSync());
  tf.dispose([x, out.logits, out.lastHiddenState]);
  return l;
}

/** `steps` greedy tokens after `prompt` with the KV cache; with `forced`, those ids are fed instead of the model's choices. */
async function greedy(lm: CausalLM, prompt: number[], steps: number, forced?: number[]): Promise<number[]> {
  const out: number[] = [];
  let next = tf.tensor2d([prompt], [1, prompt.length], "int32");
  let cache: Awaited<ReturnType<CausalLM["forward"]>>["cache"];
  for (let s = 0; s < steps; s++) {
    const r = await lm.forward({ inputIds: next, cache, useCache: true });
    cache = r.cache;
    const l = r.logits.dataSync() as Float32Array;
    const id = argmax(l, (r.logits.shape[1] - 1) * lm.vocabSize, lm.vocabSize);
    tf.dispose([next, r.logits, r.lastHiddenState]);
    out.push(id);
    next = tf.tensor2d([[forced ? forced[s] : id]], [1, 1], "int32");
  }
  next.dispose();
  (cache as { dispose?: () => void } | undefined)?.dispose?.();
  return out;
}

interface LmRun {
  logits: Float32Array[];
  free: number[][];
}

interface SettingResult {
  setting: string;
  bytes: number;
  maxAbsDeltaLogits?: number;
  top1?: number;
  greedyAgreement?: number;
  greedyPrefixes?: number[];
  psnr: number;
  ssim: number;
  psnrPerImage: number[];
  psnrVsFp32Output?: number;
}

export async function benchQuality(opts: QualityOptions = QUALITY_OPTIONS.parse({})): Promise<Row[]> {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const ckpt = resolve(opts.checkpoint);
  const info = JSON.parse(readFileSync(join(ckpt, "lm4lv.json"), "utf8")) as { task: string; extra?: { params?: Record<string, number> | null } };
  let reference: { lm: LmRun; outputs: RgbImage[] } | undefined;
  const results: SettingResult[] = [];
  let maxAbsLogit = 0;
  let ids: number[][] = [];
  let pairs = 0;
  for (const setting of ["fp32", ...opts.settings]) {
    const t0 = performance.now();
    // (LM4LV keeps its engine's sessions until the process ends: a few tens of MB per setting at the embedded default)
    const { model, dir } = await loadOrtLM4LV(ckpt, { ...settingOptions(setting), cacheDir: resolve(opts.cache), threads: opts.threads });
    const bytes = readdirSync(dir).filter((f) => f.startsWith("llama_")).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const { lm, tokenizer: tok } = model.models;
    if (!ids.length) ids = PROMPTS.map((p) => tok.encode(p, { addBos: tok.bosId !== undefined }));
    // LM: teacher-forced logits over the prompts, then free-running greedy continuations
    const run: LmRun = { logits: [], free: [] };
    for (const p of ids) run.logits.push(await logitsOf(lm, p));
    for (const p of ids) run.free.push(await greedy(lm, p, opts.tokens));
    const r: SettingResult = { setting, bytes, psnr: 0, ssim: 0, psnrPerImage: [] };
    if (!reference) {
      for (const l of run.logits) for (const v of l) maxAbsLogit = Math.max(maxAbsLogit, Math.abs(v));
    } else {
      const ref = reference.lm;
      const V = lm.vocabSize;
      let delta = 0, same = 0, positions = 0, agree = 0;
      for (let i = 0; i < ids.length; i++) {
        const [a, b] = [run.logits[i], ref.logits[i]];
        for (let j = 0; j < a.length; j++) delta = Math.max(delta, Math.abs(a[j] - b[j]));
        for (let t = 0; t < ids[i].length; t++) if (argmax(a, t * V, V) === argmax(b, t * V, V)) same++;
        positions += ids[i].length;
        const forced = await greedy(lm, ids[i], opts.tokens, ref.free[i]);
        agree += forced.filter((t, s) => t === ref.free[i][s]).length;
      }
      r.maxAbsDeltaLogits = delta;
      r.top1 = same / positions;
      r.greedyAgreement = agree / (ids.length * opts.tokens);
      r.greedyPrefixes = run.free.map((f, i) => {
        let n = 0;
        while (n < f.length && f[n] === ref.free[i][n]) n++;
        return n;
      });
    }
    // LM4LV on the degraded test photos
    const ds = new FolderPairDataset(resolve(opts.images), info.task, { size: model.imageSize, seed: 1000, params: info.extra?.params ?? undefined });
    pairs = ds.length;
    const outputs: RgbImage[] = [];
    let vsFp32 = 0;
    for (let i = 0; i < ds.length; i++) {
      const { lq, hq } = await ds.get(i, 0);
      const out = await model.restore(lq);
      out.features.dispose();
      const p = psnr(hq, out.image, { cropBorder: 4 });
      r.psnrPerImage.push(p);
      r.psnr += p / ds.length;
      r.ssim += ssim(hq, out.image, { cropBorder: 4 }) / ds.length;
      if (reference) vsFp32 += psnr(reference.outputs[i], out.image, { cropBorder: 4 }) / ds.length;
      outputs.push(out.image);
    }
    if (reference) r.psnrVsFp32Output = vsFp32;
    else reference = { lm: run, outputs };
    results.push(r);
    console.error(`[${setting}] ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const fp32 = results[0];
  const rows: Row[] = results.map((r) => ({
    weights: r.setting,
    "step + embed MiB": (r.bytes / 2 ** 20).toFixed(2),
    "max |Δlogits|": r.maxAbsDeltaLogits === undefined ? "—" : r.maxAbsDeltaLogits.toFixed(3),
    "top-1 agreement": r.top1 === undefined ? "—" : r.top1.toFixed(3),
    [`greedy agreement (${opts.tokens} tokens × ${PROMPTS.length}, teacher-forced)`]: r.greedyAgreement === undefined ? "—" : r.greedyAgreement.toFixed(3),
    "free-running prefixes": r.greedyPrefixes === undefined ? "—" : r.greedyPrefixes.join(" / "),
    [`LM4LV PSNR dB (${pairs} photos)`]: r.psnr.toFixed(2),
    "Δ PSNR vs fp32": r === fp32 ? "—" : `${r.psnr - fp32.psnr >= 0 ? "+" : ""}${(r.psnr - fp32.psnr).toFixed(2)}`,
    "per-photo Δ min … max": r === fp32 ? "—" : (() => {
      const d = r.psnrPerImage.map((p, i) => p - fp32.psnrPerImage[i]);
      return `${Math.min(...d).toFixed(2)} … ${Math.max(...d).toFixed(2)}`;
    })(),
    SSIM: r.ssim.toFixed(4),
    "PSNR vs fp32 output": r.psnrVsFp32Output === undefined ? "—" : r.psnrVsFp32Output.toFixed(2),
  }));
  printTable(`${ckpt} (task ${info.task}), ONNX Runtime, ${opts.threads} threads; |logits| ≤ ${maxAbsLogit.toFixed(1)} at fp32`, rows);
  console.log(`\n${JSON.stringify({ checkpoint: ckpt, task: info.task, maxAbsLogit, prompts: ids.map((p) => p.length), results })}`);
  return rows;
}
