#!/usr/bin/env node
/**
 * metrics <gt> <pred> [--crop-border 4] [--y-channel] [--suffix S] [--json]
 *
 * PSNR / SSIM of a prediction against its ground truth: two image files or two folders.
 */
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { evaluateFiles, evaluateFolders, type EvaluationResult } from "./evaluate.js";

const USAGE = `usage: metrics <gt> <pred> [options]

  <gt> <pred>          two image files, or two folders (images paired by name)
  --crop-border N      pixels removed from each side first (default 4)
  --y-channel          measure the luma Y (BT.601, as MATLAB/basicsr) instead of RGB
  --suffix S           folders: prediction of "x.png" is "x<S>.<ext>" (default none)
  --json               print {"images":[{"name","psnr","ssim"}...],"mean":{"psnr","ssim"}}
  -h, --help           show this help`;

class UsageError extends Error {}

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

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "crop-border": { type: "string", default: "4" },
        "y-channel": { type: "boolean", default: false },
        suffix: { type: "string", default: "" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 2) throw new UsageError(`expected <gt> <pred>, got ${positionals.length} path(s)`);
  const cropText = values["crop-border"];
  if (!/^\d+$/.test(cropText)) throw new UsageError(`--crop-border must be an integer ≥ 0, got "${cropText}"`);
  const opts = { cropBorder: Number(cropText), yChannel: values["y-channel"], suffix: values.suffix };

  const [gt, pred] = positionals;
  const kinds = [kind(gt), kind(pred)];
  if (kinds[0] !== kinds[1]) throw new UsageError(`${gt} is a ${kinds[0]} but ${pred} is a ${kinds[1]}: give two files or two folders`);
  const result = kinds[0] === "folder" ? await evaluateFolders(gt, pred, opts) : await evaluateFiles(gt, pred, opts);

  if (result.unmatched.length > 0) {
    const shown = result.unmatched.slice(0, 5).join(", ") + (result.unmatched.length > 5 ? ", ..." : "");
    console.error(`metrics: note: ${result.unmatched.length} prediction image(s) without ground truth ignored: ${shown}`);
  }
  if (values.json) {
    const out = {
      images: result.images.map((r) => ({ name: r.name, psnr: r.psnr, ssim: r.ssim })),
      mean: { psnr: result.mean.psnr, ssim: result.mean.ssim },
    };
    console.log(JSON.stringify(out));
  } else {
    const what = opts.yChannel ? "Y channel" : "RGB";
    console.log(`${what}, crop border ${opts.cropBorder}, ${result.images.length} image(s)\n`);
    console.log(table(result));
  }
}

main(process.argv.slice(2)).catch((e: Error) => {
  console.error(`metrics: ${e.message}`);
  if (e instanceof UsageError) console.error(`run "metrics --help" for usage`);
  process.exit(1);
});
