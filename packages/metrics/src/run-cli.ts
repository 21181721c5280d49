/**
 * metrics <gt> <pred> [--crop-border 4] [--y-channel] [--suffix S] [--json]
 *
 * PSNR / SSIM of a prediction against its ground truth: two image files or two folders.
 * The options are one zod schema (METRICS_OPTIONS, parsed by core's parseCommandLine); every
 * problem names its flag.
 */
import { statSync } from "node:fs";
import { z } from "zod";
import { nonNegativeInt, numeric, parseCommandLine, usageText, UsageError } from "@lm4lv/core";
import { evaluateFiles, evaluateFolders, type EvaluationResult } from "./evaluate.js";
import { DEFAULT_CROP_BORDER } from "./metrics.js";

export const METRICS_OPTIONS = z.object({
  cropBorder: z.preprocess(numeric, nonNegativeInt()).default(DEFAULT_CROP_BORDER).describe("pixels removed from each side first"),
  /** Omitted: RGB (the library's default). */
  yChannel: z.boolean().optional().describe("measure the luma Y (BT.601, as MATLAB/basicsr) instead of RGB"),
  /** Folders: the prediction of "x.png" is "x<suffix>.<ext>"; omitted: none (the library's default). */
  suffix: z.string().optional().describe('folders: the prediction of "x.png" is "x<suffix>.<ext>" (default none)'),
  json: z.boolean().default(false).describe('print {"images":[{"name","psnr","ssim"}...],"mean":{"psnr","ssim"}}'),
});

export type MetricsOptions = z.output<typeof METRICS_OPTIONS>;

const POSITIONALS = "<gt> <pred>";

const USAGE = usageText(`usage: metrics ${POSITIONALS} [options]

  <gt> <pred>          two image files, or two folders (images paired by name)`, METRICS_OPTIONS);

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** argv → the two paths and typed options; unknown flags, bad values and a wrong number of paths throw core's UsageError naming them. */
export function parseMetricsArgs(argv: string[]): { gt: string; pred: string; options: MetricsOptions; help: false } | { help: true } {
  const { options, positionals, help } = parseCommandLine(argv, METRICS_OPTIONS, { positionals: POSITIONALS });
  if (help) return { help: true };
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
