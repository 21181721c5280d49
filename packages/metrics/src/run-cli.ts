/**
 * metrics <gt> <pred> [--crop-border 4] [--y-channel] [--suffix S] [--json]
 *
 * PSNR / SSIM of a prediction against its ground truth: two image files or two folders.
 * The options are one zod schema (METRICS_OPTIONS); every problem names its flag.
 */
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { nonNegativeInt, validateConfig } from "@lm4lv/core";
import { evaluateFiles, evaluateFolders, type EvaluationResult } from "./evaluate.js";
import { DEFAULT_CROP_BORDER } from "./metrics.js";

/** A number written as text → the number; anything else is left for the schema to reject. */
const numeric = (v: unknown) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

export const METRICS_OPTIONS = z.object({
  cropBorder: z.preprocess(numeric, nonNegativeInt()).default(DEFAULT_CROP_BORDER),
  /** Omitted: RGB (the library's default). */
  yChannel: z.boolean().optional(),
  /** Folders: the prediction of "x.png" is "x<suffix>.<ext>"; omitted: none (the library's default). */
  suffix: z.string().optional(),
  json: z.boolean().default(false),
});

export type MetricsOptions = z.output<typeof METRICS_OPTIONS>;

const FLAGS = {
  "crop-border": { type: "string" },
  "y-channel": { type: "boolean" },
  suffix: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const FLAG_OF: Record<keyof MetricsOptions, string> = { cropBorder: "--crop-border", yChannel: "--y-channel", suffix: "--suffix", json: "--json" };

const USAGE = `usage: metrics <gt> <pred> [options]

  <gt> <pred>          two image files, or two folders (images paired by name)
  --crop-border N      pixels removed from each side first (default ${DEFAULT_CROP_BORDER})
  --y-channel          measure the luma Y (BT.601, as MATLAB/basicsr) instead of RGB
  --suffix S           folders: prediction of "x.png" is "x<S>.<ext>" (default none)
  --json               print {"images":[{"name","psnr","ssim"}...],"mean":{"psnr","ssim"}}
  -h, --help           show this help`;

export class UsageError extends Error {}

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** argv → the two paths and typed options; unknown flags, bad values and a wrong number of paths throw UsageError naming them. */
export function parseMetricsArgs(argv: string[]): { gt: string; pred: string; options: MetricsOptions; help: false } | { help: true } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { help: true };
  if (positionals.length !== 2) throw new UsageError(`expected <gt> <pred>, got ${positionals.length} path(s)`);
  const raw = { cropBorder: values["crop-border"], yChannel: values["y-channel"], suffix: values.suffix, json: values.json };
  const where = (path: readonly PropertyKey[]) => FLAG_OF[path[0] as keyof MetricsOptions] ?? String(path[0]);
  const options = validateConfig(raw, METRICS_OPTIONS, where, { error: UsageError });
  return { gt: positionals[0], pred: positionals[1], options, help: false };
}

function kind(path: string): "file" | "folder" {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${path}: no such file or folder`);
  }
  return st.isDirectory() ? "folder" : "file";
}

function table(result: EvaluationResult): string {
  const rows = result.images.map((r) => [r.name, r.psnr.toFixed(4), r.ssim.toFixed(6)]);
  const mean = ["mean", result.mean.psnr.toFixed(4), result.mean.ssim.toFixed(6)];
  const header = ["image", "PSNR (dB)", "SSIM"];
  const w = [0, 1, 2].map((c) => Math.max(...[header, mean, ...rows].map((r) => r[c].length)));
  const line = (r: string[]) => `${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}`;
  const rule = "-".repeat(w[0] + w[1] + w[2] + 4);
  return [line(header), rule, ...rows.map(line), rule, line(mean)].join("\n");
}

async function run(argv: string[], io: CliIO): Promise<void> {
  const cmd = parseMetricsArgs(argv);
  if (cmd.help) {
    io.out(USAGE);
    return;
  }
  const { gt, pred, options: opts } = cmd;
  const kinds = [kind(gt), kind(pred)];
  if (kinds[0] !== kinds[1]) throw new UsageError(`${gt} is a ${kinds[0]} but ${pred} is a ${kinds[1]}: give two files or two folders`);
  const result = kinds[0] === "folder" ? await evaluateFolders(gt, pred, opts) : await evaluateFiles(gt, pred, opts);

  if (result.unmatched.length > 0) {
    const shown = result.unmatched.slice(0, 5).join(", ") + (result.unmatched.length > 5 ? ", ..." : "");
    io.err(`metrics: note: ${result.unmatched.length} prediction image(s) without ground truth ignored: ${shown}`);
  }
  if (opts.json) {
    const out = {
      images: result.images.map((r) => ({ name: r.name, psnr: r.psnr, ssim: r.ssim })),
      mean: { psnr: result.mean.psnr, ssim: result.mean.ssim },
    };
    io.out(JSON.stringify(out));
  } else {
    const what = opts.yChannel ? "Y channel" : "RGB";
    io.out(`${what}, crop border ${opts.cropBorder}, ${result.images.length} image(s)\n`);
    io.out(table(result));
  }
}

/** Runs the CLI; returns the exit code (0 ok, 1 error). */
export async function main(argv: string[], io: CliIO = { out: (l) => console.log(l), err: (l) => console.error(l) }): Promise<number> {
  try {
    await run(argv, io);
    return 0;
  } catch (e) {
    io.err(`metrics: ${(e as Error).message}`);
    if (e instanceof UsageError) io.err(`run "metrics --help" for usage`);
    return 1;
  }
}
