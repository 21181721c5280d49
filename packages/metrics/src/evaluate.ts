/**
 * PSNR / SSIM of image files and of folder pairs (ground truth vs prediction).
 *
 * Pairing in folders: every image in the ground-truth folder needs one image in the
 * prediction folder with the same stem (file name without extension) plus the
 * optional `suffix`, e.g. `0001.png` ↔ `0001.png`, `0001.jpg` or, with suffix
 * "_out", `0001_out.png`. A prediction with the GT's exact extension wins; if
 * several other extensions share the stem, the pair is ambiguous and an error.
 * This extends basicsr's script (same basename + suffix + GT extension) to
 * predictions saved in another format. Non-image files and sub-folders are ignored;
 * prediction images without a GT counterpart are listed in `unmatched`.
 */
import { basename, extname, join } from "node:path";
import { listImages, readImage, type RgbImage } from "@lm4lv/core";
import { psnr, ssim, MetricError, type MetricOptions } from "./metrics.js";

export interface ImageScore {
  /** File name in the ground-truth folder (or the GT file's name). */
  name: string;
  psnr: number;
  ssim: number;
}

export interface EvaluationResult {
  images: ImageScore[];
  /** Mean over `images` (the dataset score). */
  mean: { psnr: number; ssim: number };
  /** Prediction images that no GT image claimed (empty for a file pair). */
  unmatched: string[];
}

export interface EvaluateOptions extends Omit<MetricOptions, "quantize"> {
  /** Added to a GT stem to name its prediction, as basicsr's `suffix` (default ""). */
  suffix?: string;
}

async function load(path: string, role: string): Promise<RgbImage> {
  try {
    return await readImage(path);
  } catch (e) {
    throw new MetricError(`${role} ${(e as Error).message}`);
  }
}

function scorePair(gt: RgbImage, pred: RgbImage, gtPath: string, predPath: string, opts: EvaluateOptions): ImageScore {
  if (gt.width !== pred.width || gt.height !== pred.height) {
    throw new MetricError(
      `size mismatch: ${gtPath} is ${gt.height}×${gt.width}, ${predPath} is ${pred.height}×${pred.width} (height×width)`,
    );
  }
  const o: MetricOptions = { cropBorder: opts.cropBorder, yChannel: opts.yChannel };
  try {
    return { name: basename(gtPath), psnr: psnr(gt, pred, o), ssim: ssim(gt, pred, o) };
  } catch (e) {
    throw new MetricError(`${gtPath} vs ${predPath}: ${(e as Error).message}`);
  }
}

function meanOf(images: ImageScore[]): { psnr: number; ssim: number } {
  const n = images.length;
  return {
    psnr: images.reduce((s, r) => s + r.psnr, 0) / n,
    ssim: images.reduce((s, r) => s + r.ssim, 0) / n,
  };
}

/** Scores one prediction file against its ground-truth file. */
export async function evaluateFiles(gtPath: string, predPath: string, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const gt = await load(gtPath, "ground truth");
  const pred = await load(predPath, "prediction");
  const images = [scorePair(gt, pred, gtPath, predPath, opts)];
  return { images, mean: meanOf(images), unmatched: [] };
}

/** The images of a folder (core's listImages), a problem named with the folder's role. */
function listFolder(dir: string, role: string): string[] {
  try {
    return listImages(dir);
  } catch (e) {
    throw new MetricError(`${role} folder ${(e as Error).message}`);
  }
}

function stem(name: string): string {
  return name.slice(0, name.length - extname(name).length);
}

/** GT file name → prediction file name, by the rule in this file's header. */
export function pairFiles(gtNames: string[], predNames: string[], suffix = ""): { pairs: [string, string][]; missing: string[]; unmatched: string[] } {
  const byStem = new Map<string, string[]>();
  for (const p of predNames) {
    const s = stem(p);
    byStem.set(s, [...(byStem.get(s) ?? []), p]);
  }
  const pairs: [string, string][] = [];
  const missing: string[] = [];
  const used = new Set<string>();
  for (const g of gtNames) {
    const want = stem(g) + suffix;
    const candidates = byStem.get(want) ?? [];
    const exact = candidates.find((p) => extname(p) === extname(g));
    if (exact === undefined && candidates.length > 1) {
      throw new MetricError(`ground truth ${g}: several predictions match (${candidates.join(", ")})`);
    }
    const pick = exact ?? candidates[0];
    if (pick === undefined) missing.push(g);
    else {
      pairs.push([g, pick]);
      used.add(pick);
    }
  }
  return { pairs, missing, unmatched: predNames.filter((p) => !used.has(p)) };
}

/**
 * Scores every image of `gtDir` against its counterpart in `predDir` (sorted by GT
 * name); the mean over images is the dataset score.
 */
export async function evaluateFolders(gtDir: string, predDir: string, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const gtNames = listFolder(gtDir, "ground-truth");
  const predNames = listFolder(predDir, "prediction");

  const { pairs, missing, unmatched } = pairFiles(gtNames, predNames, opts.suffix ?? "");
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).map((g) => join(gtDir, g)).join(", ");
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
    throw new MetricError(`no prediction in ${predDir} for ${shown}${more}`);
  }

  const images: ImageScore[] = [];
  for (const [g, p] of pairs) {
    const gtPath = join(gtDir, g);
    const predPath = join(predDir, p);
    const gt = await load(gtPath, "ground truth");
    const pred = await load(predPath, "prediction");
    images.push(scorePair(gt, pred, gtPath, predPath, opts));
  }
  return { images, mean: meanOf(images), unmatched };
}
