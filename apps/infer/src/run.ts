/**
 * pnpm infer [--checkpoint <dir> | --task <name>] [<image|folder|pairs.json>] [--clean <file|folder>] [--out dir] [--json]
 *            [--mae <dir>] [--llm <dir>] [--tokenizer <dir>] [--engine ort|tfjs] [--quantize fp32|fp16|int8|int4]
 *            [--int4-block-size 32|64|128] [--cache <dir>]
 *
 * With no input: restores the bundled degraded example of the task (default: denoise) with the
 * embedded default checkpoint and prints PSNR/SSIM of input and output against the clean image.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initBackend, usageText, UsageError } from "@lm4lv/core";
import { LM4LV, checkpointDir, listInferenceItems, meanScores, restoreFiles, type ItemResult, type InferenceItem } from "@lm4lv/pipeline";
import { ortAvailable, weightSettingName } from "@lm4lv/onnx/available";
import { INFER_OPTIONS, parseInferOptions, type InferOptions } from "./options.js";

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The repository root (apps/infer/dist/run.js → ../../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const DEFAULT_MODELS = join(REPO_ROOT, "models", "lm4lv-tiny");
export const DEFAULT_EXAMPLES = join(REPO_ROOT, "assets", "examples");

const USAGE = usageText(
  `usage: pnpm infer [--checkpoint <dir> | --task <name>] [<image|folder|pairs.json>] [options]

  pnpm infer                          restore the bundled degraded example (denoise) with the embedded default
  pnpm infer --task saltpepper        the same for another shipped task
  pnpm infer --task denoise my.png    restore your own image with a shipped checkpoint
  pnpm infer --checkpoint runs/x in/  restore a folder with your own checkpoint`,
  INFER_OPTIONS,
);

const fmt = (v: number | undefined, d = 2) => (v === undefined ? "" : v.toFixed(d));

function table(results: ItemResult[]): string {
  const lines = ["| image | input PSNR | input SSIM | MAE(LQ) PSNR | output PSNR | output SSIM | gain PSNR | gain SSIM | s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"];
  for (const r of results) {
    if (r.error) { lines.push(`| ${r.name} | error: ${r.error} |`); continue; }
    const s = r.scores;
    lines.push(`| ${r.name} | ${fmt(s?.input.psnr)} | ${fmt(s?.input.ssim, 4)} | ${fmt(s?.mae?.psnr)} | ${fmt(s?.output.psnr)} | ${fmt(s?.output.ssim, 4)} | ${s ? (s.output.psnr - s.input.psnr >= 0 ? "+" : "") + fmt(s.output.psnr - s.input.psnr) : ""} | ${s ? (s.output.ssim - s.input.ssim >= 0 ? "+" : "") + fmt(s.output.ssim - s.input.ssim, 4) : ""} | ${fmt(r.seconds)} |`);
  }
  const m = meanScores(results);
  if (m && results.filter((r) => r.scores).length > 1) {
    lines.push(`| **mean** | ${fmt(m.input.psnr)} | ${fmt(m.input.ssim, 4)} | ${fmt(m.mae?.psnr)} | ${fmt(m.output.psnr)} | ${fmt(m.output.ssim, 4)} | ${fmt(m.output.psnr - m.input.psnr)} | ${fmt(m.output.ssim - m.input.ssim, 4)} | |`);
  }
  return lines.join("\n");
}

export async function runInfer(argv: string[], io: Io = { out: (s) => console.log(s), err: (s) => console.error(s) }): Promise<number> {
  let o: InferOptions, positionals: string[], help: boolean;
  try {
    ({ options: o, positionals, help } = parseInferOptions(argv));
  } catch (e) {
    io.err(e instanceof UsageError ? `${e.message}\n${USAGE}` : (e as Error).message); // an unknown flag, a bad value, a second input
    return 1;
  }
  if (help) { io.out(USAGE); return 0; }
  const t0 = performance.now();
  const task = o.task;
  const ckptArg = o.checkpoint ?? join(DEFAULT_MODELS, task);
  if (!existsSync(ckptArg)) {
    io.err(o.checkpoint
      ? `${ckptArg}: checkpoint folder not found`
      : `no shipped checkpoint for task "${task}" (looked in ${ckptArg}); pass --checkpoint <dir>`);
    return 1;
  }
  let items: InferenceItem[];
  try {
    if (positionals.length) {
      items = listInferenceItems(positionals[0], { clean: o.clean });
    } else {
      const ex = join(DEFAULT_EXAMPLES, task);
      if (!existsSync(join(ex, "degraded.png"))) { io.err(`no bundled example for task "${task}" in ${ex}; give an input image`); return 1; }
      items = [{ name: task, input: join(ex, "degraded.png"), target: join(ex, "clean.png") }];
    }
  } catch (e) {
    io.err(`error: ${(e as Error).message}`);
    return 1;
  }
  const { engine: engineArg, threads, quantize, int4BlockSize } = o;
  const backend = await initBackend();
  let ckpt: string;
  try {
    ckpt = checkpointDir(ckptArg);
  } catch (e) {
    io.err(`error: cannot load checkpoint ${ckptArg}: ${(e as Error).message}`);
    return 1;
  }
  const overrides = { mae: o.mae, llm: o.llm, tokenizer: o.tokenizer };
  // --quantize asks for ORT as --engine ort does: no silent fallback to tfjs
  const ortRequired = engineArg === "ort" || (quantize !== undefined && quantize !== "fp32");
  const useOrt = ortRequired || (engineArg === undefined && (await ortAvailable()));
  if (ortRequired && !(await ortAvailable())) { io.err(`${engineArg === "ort" ? "--engine ort" : `--quantize ${quantize}`}: onnxruntime-node does not load on this machine`); return 1; }
  let model: LM4LV | undefined;
  let ortError: string | undefined;
  if (useOrt) {
    try {
      // ORT only: the MAE and the LM are exported from their folders and never loaded in tfjs
      // (@lm4lv/onnx, which loads onnxruntime-node, is imported only for this engine)
      const tE = performance.now();
      const { loadOrtLM4LV } = await import("@lm4lv/onnx");
      const r = await loadOrtLM4LV(ckpt, { ...overrides, threads, quantize, int4BlockSize, cacheDir: o.cache });
      model = r.model;
      if (r.exported && !o.json) io.err(`exported ONNX models to ${r.dir} in ${((performance.now() - tE) / 1000).toFixed(1)} s (cached for next time)`);
    } catch (e) {
      if (ortRequired) { io.err(`error: ONNX Runtime engine: ${(e as Error).message}`); return 1; }
      ortError = (e as Error).message;
    }
  }
  if (!model) {
    try {
      model = await LM4LV.fromCheckpoint(ckpt, overrides);
    } catch (e) {
      io.err(`error: cannot load checkpoint ${ckptArg}: ${(e as Error).message}`);
      return 1;
    }
    if (ortError !== undefined) io.err(`note: ONNX Runtime unavailable (${ortError}); using tfjs`);
  }
  const outDir = resolve(o.out);
  // e.g. "int4" or "int4-b128" (the export sub-folder's name)
  const weights = model.engineName === "tfjs" ? "fp32" : weightSettingName(quantize ?? "fp32", int4BlockSize);
  const engineLabel = model.engineName === "tfjs" ? `tfjs-${backend}` : model.engineName;
  if (!o.json) io.err(`lm4lv: task ${model.task}, ${items.length} image(s), ${model.imageSize}px${model.tiles > 1 ? ` as ${model.tiles}×${model.tiles} tiles` : ""}, ${model.numVisualTokens} visual tokens${model.tiles > 1 ? " per tile" : ""}, ${engineLabel}${weights === "fp32" ? "" : ` (${weights} LM weights)`}`);
  const results = await restoreFiles(model, items, {
    outDir,
    maeBaseline: o.maeBaseline,
    lowMemory: o.lowMemory,
    onItem: o.json || items.length === 1 ? undefined : (done, total, r) => io.err(`[${done}/${total}] ${r.name} ${r.error ? `error: ${r.error}` : `${fmt(r.seconds)} s`}`),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (o.json) {
    io.out(JSON.stringify({ task: model.task, checkpoint: resolve(ckptArg), engine: engineLabel, weights, outDir, seconds, images: results, mean: meanScores(results) ?? null }, null, 2));
  } else {
    io.out(table(results));
    const ok = results.filter((r) => !r.error);
    if (ok.length) io.out(`\nrestored → ${ok.length === 1 ? ok[0].output : outDir}; side by side (input | restored${ok.some((r) => r.scores) ? " | clean" : ""}) → ${ok.length === 1 ? ok[0].comparison : "*_compare.png"}`);
    io.out(`${fmt(seconds, 1)} s in all`);
  }
  return results.some((r) => r.error) ? 2 : 0;
}
