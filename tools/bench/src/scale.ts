/**
 * pnpm bench scale [--llm=tinyllama-1.1b] [--mae=vit-mae-base] [--quantize=int4,int8] [--int4-block-size=32|64|128]
 *                  [--dir=.cache/scale] [--threads=N] [--lm-decode-tokens=16] [--keep]
 *
 * LM4LV at real model shapes with random weights, on ONNX Runtime, one process per stage so each
 * peak RSS is its own (options: SCALE_OPTIONS, `--name=value` or `--name value`; bare words are suite names):
 *
 *   1. random HF folders (random-hf.ts, F16) in <dir>/<preset>, written once and reused, and
 *      random adapters in <dir>/ckpt-<llm>-<mae> (lm4lv.json: 224 px → 197 visual tokens)
 *   2. export, per quantize setting (int4 with blocks of --int4-block-size, in its own folder):
 *      `ensureExported` (hash of the sources + streamed export) → seconds, bytes on disk, peak RSS
 *   3. run: `loadOrtModels` (one session for the LM and the visual loop) → load seconds; one
 *      restored image = MAE encode + prompt (40 text + 197 LQ positions, the prefill) + 197
 *      visual tokens + MAE decode → seconds, prefill tokens/s, ms per visual token; then LM
 *      decode (1 token with logits) continuing the same cache → ms/token; peak RSS
 *
 * The weights are random (timing and memory only; the image is noise). The export folder is
 * removed after its run unless --keep (a 7B int8 export is ~7 GB). A benchmark, never a test.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { initBackend, numeric, oneOf, positiveInt } from "@lm4lv/core";
import { LM4LVAdapters, saveAdapters } from "@lm4lv/adapters";
import { DEFAULT_INT4_BLOCK_SIZE, ensureExported, INT4_BLOCK_SIZES, loadOrtModels, OrtKVCache, OrtTensor, toOrt, WEIGHT_FORMATS } from "@lm4lv/onnx";
import type { Int4BlockSize, WeightFormat } from "@lm4lv/onnx";
import { printTable } from "./harness.js";
import type { Row } from "./harness.js";
import { commaList, isMain, parseCommandLine, usageText, UsageError } from "./options.js";
import { LLM_PRESETS, MAE_PRESETS, presetPlan, writeRandomHF } from "./random-hf.js";

/** Text positions of the prompt besides the LQ image (the reference template is about this long). */
const PROMPT_TEXT = 40;
const RESULT_TAG = "SCALE_RESULT ";

/** The options of `pnpm bench scale`: the one place each default lives. */
export const SCALE_OPTIONS = z
  .object({
    llm: oneOf(LLM_PRESETS).default("tinyllama-1.1b").describe("the LM's preset (random-hf.ts)"),
    mae: oneOf(MAE_PRESETS).default("vit-mae-base").describe("the MAE's preset (random-hf.ts)"),
    quantize: commaList()
      .pipe(z.array(oneOf(WEIGHT_FORMATS)))
      .default(["int4", "int8"])
      .describe("weight formats exported and run, comma-separated"),
    int4BlockSize: z
      .preprocess(numeric, z.literal(INT4_BLOCK_SIZES, `expected one of ${INT4_BLOCK_SIZES.join(", ")}`))
      .optional()
      .describe(`weights per block of the int4 setting: ${INT4_BLOCK_SIZES.join(", ")} (default ${DEFAULT_INT4_BLOCK_SIZE})`),
    dir: z.string().default(join(".cache", "scale")).describe("where the random folders and exports go"),
    threads: positiveInt().default(() => cpus().length).describe("ORT intra-op threads (one per core)"),
    lmDecodeTokens: positiveInt().default(16).describe("LM decode steps timed after the image"),
    keep: z.boolean().default(false).describe("keep the export folders"),
  })
  .superRefine((o, ctx) => {
    if (o.int4BlockSize !== undefined && !o.quantize.includes("int4")) {
      ctx.addIssue({ code: "custom", path: ["int4BlockSize"], input: o.int4BlockSize, message: `needs int4 in --quantize (--quantize is ${o.quantize.join(",")})` });
    }
  });

export type ScaleOptions = z.output<typeof SCALE_OPTIONS>;

export const SCALE_USAGE = usageText("usage: pnpm bench scale [--name=value ...]", SCALE_OPTIONS);

interface ExportResult {
  seconds: number;
  bytes: number;
  peakRssMiB: number;
  dir: string;
}

interface RunResult {
  loadSeconds: number;
  rssAfterLoadMiB: number;
  encodeSeconds: number;
  prefillTokens: number;
  prefillSeconds: number;
  visualTokens: number;
  visualMsPerToken: number;
  decodeImageSeconds: number;
  imageSeconds: number;
  lmDecodeMsPerToken: number;
  lmDecodeContext: number;
  peakRssMiB: number;
}

const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

function folderBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

/** Random HF folders and adapters for the two presets (kept between runs). */
function prepare(opts: ScaleOptions): { mae: string; llm: string; ckpt: string } {
  const folder = (preset: string) => {
    const dir = join(opts.dir, preset);
    if (!existsSync(join(dir, "config.json"))) {
      const t0 = performance.now();
      const r = writeRandomHF(presetPlan(preset), dir, { dtype: "F16" });
      console.error(`${preset}: ${(r.bytes / 2 ** 30).toFixed(2)} GiB F16 written in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${dir}`);
    }
    return resolve(dir);
  };
  const mae = folder(opts.mae);
  const llm = folder(opts.llm);
  const ckpt = resolve(join(opts.dir, `ckpt-${opts.llm}-${opts.mae}`));
  if (!existsSync(join(ckpt, "lm4lv.json"))) {
    const maeCfg = presetPlan(opts.mae).config as { hidden_size: number; image_size: number; patch_size: number };
    const llmCfg = presetPlan(opts.llm).config as { hidden_size: number };
    const adapters = new LM4LVAdapters({ visionHidden: maeCfg.hidden_size, llmHidden: llmCfg.hidden_size, seed: 1 });
    saveAdapters(ckpt, adapters, { visionModel: mae, llm, task: "denoise", numVisualTokens: 1 + (maeCfg.image_size / maeCfg.patch_size) ** 2, step: 0, extra: { note: "random adapters for pnpm bench scale" } });
    adapters.dispose();
  }
  return { mae, llm, ckpt };
}

// ---------------------------------------------------------------------------------------------
// Child stages

function exportStage(args: { mae: string; llm: string; ckpt: string; base: string; quantize: WeightFormat; int4BlockSize?: Int4BlockSize }): ExportResult {
  const t0 = performance.now();
  const r = ensureExported({ mae: args.mae, llm: args.llm, adapters: args.ckpt }, args.base, { quantize: args.quantize, int4BlockSize: args.int4BlockSize });
  const seconds = (performance.now() - t0) / 1000;
  const bytes = folderBytes(r.dir);
  return { seconds, bytes, peakRssMiB: peakRssMiB(), dir: r.dir };
}

async function runStage(args: { dir: string; threads: number; lmDecodeTokens: number }): Promise<RunResult> {
  const t0 = performance.now();
  const ort = await loadOrtModels(args.dir, { intraOpThreads: args.threads });
  const loadSeconds = (performance.now() - t0) / 1000;
  const rssAfterLoadMiB = process.memoryUsage().rss / 2 ** 20;
  const { vision, lm, visualStep } = ort;
  if (!vision || !lm || !visualStep) throw new Error(`${args.dir}: the export lacks the vision, LM or visual-step graph`);
  const S = vision.imageSize;
  const n = vision.numTokens;
  const { hiddenSize: C, visionHidden: dv } = visualStep.info;
  try {
    // MAE encode of one (random) 224 px image
    const pixels = tf.randomUniform([1, 3, S, S], -1, 1, "float32", 3) as tf.Tensor4D;
    let t = performance.now();
    const lqFeatures = await vision.encode(pixels); // [1, 197, Dv]
    const encodeSeconds = (performance.now() - t) / 1000;
    await vision.releaseEncoder(); // the image is encoded once: the encoder's weights leave before the LM runs
    const ids = tf.tensor2d(Array.from({ length: PROMPT_TEXT }, (_, i) => 3 + ((i * 7919) % (lm.vocabSize - 3))), [1, PROMPT_TEXT], "int32");
    const text = await lm.embed(ids); // [1, 40, C]
    // the prompt (prefill) in one run: text then the LQ features, through the adapter in the graph
    const cache = new OrtKVCache(visualStep.info.numLayers);
    t = performance.now();
    let f = await visualStep.run(toOrt(text), toOrt(lqFeatures), cache); // visual token 0
    const prefillSeconds = (performance.now() - t) / 1000;
    const prefillTokens = PROMPT_TEXT + lqFeatures.shape[1];
    // the visual loop as generateVisualTokensOrt runs it: one run per token, feature in → next feature out
    const noText = new OrtTensor("float32", new Float32Array(0), [1, 0, C]);
    const out = new Float32Array(n * dv);
    out.set(f.data as Float32Array, 0);
    t = performance.now();
    for (let i = 1; i < n; i++) {
      f = await visualStep.run(noText, f, cache);
      out.set(f.data as Float32Array, i * dv);
    }
    const visualMsPerToken = (performance.now() - t) / (n - 1);
    const features = tf.tensor3d(out, [1, n, dv]);
    t = performance.now();
    (await vision.decode(features)).dispose();
    const decodeImageSeconds = (performance.now() - t) / 1000;
    const imageSeconds = encodeSeconds + prefillSeconds + (visualMsPerToken * (n - 1)) / 1000 + decodeImageSeconds;
    // LM decode on the same session, continuing the visual loop's cache (logits for one position)
    const lmDecodeContext = cache.length;
    const x = tf.slice(text, [0, 0, 0], [1, 1, C]) as tf.Tensor3D;
    t = performance.now();
    for (let i = 0; i < args.lmDecodeTokens; i++) {
      const o = await lm.forward({ inputsEmbeds: x, cache });
      o.logits.dataSync();
      tf.dispose([o.logits, o.lastHiddenState]);
    }
    const lmDecodeMsPerToken = (performance.now() - t) / Math.max(1, args.lmDecodeTokens);
    cache.dispose();
    tf.dispose([pixels, lqFeatures, ids, text, features, x]);
    return { loadSeconds, rssAfterLoadMiB, encodeSeconds, prefillTokens, prefillSeconds, visualTokens: n, visualMsPerToken, decodeImageSeconds, imageSeconds, lmDecodeMsPerToken, lmDecodeContext, peakRssMiB: peakRssMiB() };
  } finally {
    ort.dispose();
  }
}

/** Runs one stage in a child process (this file's own entry) and returns what it reports. */
function child<T>(stage: "export" | "run", args: object): T {
  const script = fileURLToPath(new URL("./scale.js", import.meta.url));
  const r = spawnSync(process.execPath, [script, "--child", stage, JSON.stringify(args)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  const line = r.stdout?.split("\n").find((l) => l.startsWith(RESULT_TAG));
  if (r.status !== 0 || !line) throw new Error(`bench scale: the ${stage} stage failed (exit ${r.status ?? r.signal})`);
  return JSON.parse(line.slice(RESULT_TAG.length)) as T;
}

// ---------------------------------------------------------------------------------------------
// Entry

/** argv → typed options; a bad flag throws UsageError naming it. `allow`: flags of other suites named in the same run. */
export function parseScaleArgs(argv: string[], allow: readonly z.ZodObject[] = []): ScaleOptions {
  return parseCommandLine(argv, SCALE_OPTIONS, { allow }).options;
}

export async function benchScale(opts: ScaleOptions = SCALE_OPTIONS.parse({})): Promise<Row[]> {
  const { mae, llm, ckpt } = prepare(opts);
  const rows: Row[] = [];
  const all: Record<string, unknown>[] = [];
  for (const quantize of opts.quantize) {
    const base = resolve(join(opts.dir, `onnx-${opts.llm}-${opts.mae}`));
    // int4 rows always name their block size (the default's too), so tables of different runs compare
    const int4BlockSize = quantize === "int4" ? (opts.int4BlockSize ?? DEFAULT_INT4_BLOCK_SIZE) : undefined;
    const label = int4BlockSize ? `int4, blocks of ${int4BlockSize}` : quantize;
    console.error(`[${label}] export ${opts.llm} + ${opts.mae} → ${base}`);
    const ex = child<ExportResult>("export", { mae, llm, ckpt, base, quantize, int4BlockSize });
    console.error(`[${label}] exported in ${ex.seconds.toFixed(1)} s (peak RSS ${ex.peakRssMiB.toFixed(0)} MiB); running`);
    const run = child<RunResult>("run", { dir: ex.dir, threads: opts.threads, lmDecodeTokens: opts.lmDecodeTokens });
    if (!opts.keep) rmSync(ex.dir, { recursive: true, force: true });
    all.push({ llm: opts.llm, mae: opts.mae, quantize, int4BlockSize, threads: opts.threads, export: ex, run });
    rows.push({
      weights: label,
      "export s": ex.seconds,
      "export peak RSS GiB": ex.peakRssMiB / 1024,
      "files GiB": ex.bytes / 2 ** 30,
      "load s": run.loadSeconds,
      "prefill tok/s": run.prefillTokens / run.prefillSeconds,
      "visual ms/token": run.visualMsPerToken,
      [`LM decode ms/token (ctx ${run.lmDecodeContext})`]: run.lmDecodeMsPerToken,
      "s / image": run.imageSeconds,
      "run peak RSS GiB": run.peakRssMiB / 1024,
    });
  }
  printTable(`${opts.llm} + ${opts.mae}, random weights, ${opts.threads} ORT threads, 224 px (1 + 196 visual tokens), prompt ${PROMPT_TEXT} text + 197 LQ positions`, rows);
  console.log(`\n${JSON.stringify(all)}`);
  return rows;
}

async function childMain(argv: string[]): Promise<void> {
  const [stage, json] = argv;
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  const args = JSON.parse(json);
  const result = stage === "export" ? exportStage(args) : stage === "run" ? await runStage(args) : undefined;
  if (!result) throw new Error(`unknown stage "${stage}"`);
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`);
}

if (isMain("scale")) {
  const argv = process.argv.slice(2);
  const run = async () => {
    if (argv[0] === "--child") return childMain(argv.slice(1));
    const { options, positionals, help } = parseCommandLine(argv, SCALE_OPTIONS);
    if (help) return console.log(SCALE_USAGE);
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    await benchScale(options);
  };
  run().then(
    () => process.exit(0),
    (e) => {
      console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
      if (e instanceof UsageError) console.error(`\n${SCALE_USAGE}`);
      process.exit(1);
    },
  );
}
