/**
 * Restoring files with a trained LM4LV model: what `pnpm infer` runs.
 * Inputs: one image, a folder of images, or a pairs JSON in the reference format (image[0] = degraded
 * input, image[1] = clean target). Each item is processed on its own: an unreadable image or a target
 * of the wrong size is reported for that item and the others still run.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, dirname, extname, isAbsolute, join } from "node:path";
import { z } from "zod";
import { hconcat, isImagePath, readImage, writeImage, type RgbImage } from "@lm4lv/core";
import { DATA_ITEM_FIELDS, listImages, readDataItems } from "@lm4lv/data";
import { psnr, ssim } from "@lm4lv/metrics";
import type { LM4LV } from "./lm4lv.js";

export interface InferenceItem {
  name: string;
  input: string;
  /** Clean target, when known. */
  target?: string;
}

/**
 * An item of a pairs JSON for restoration: the reference format's `image` field (DATA_ITEM_FIELDS),
 * image[0] the input and image[1] the clean target when given; the conversation is not needed.
 */
export const INFERENCE_ITEM_SCHEMA = z.object({
  image: DATA_ITEM_FIELDS.shape.image.refine((paths) => paths.length > 0, "expected at least one path (the input)"),
});

/** Image file, folder, or reference-format JSON → items. `cleanDir` pairs folder items with targets by file stem. */
export function listInferenceItems(input: string, opts: { clean?: string } = {}): InferenceItem[] {
  if (!existsSync(input)) throw new Error(`${input}: no such file or folder`);
  const stemOf = (p: string) => basename(p, extname(p));
  if (statSync(input).isDirectory()) {
    const names = listImages(input);
    if (!names.length) throw new Error(`${input}: no images in this folder`);
    const cleanByStem = new Map<string, string>();
    if (opts.clean) for (const n of listImages(opts.clean)) cleanByStem.set(stemOf(n), join(opts.clean, n));
    return names.map((n) => ({ name: stemOf(n), input: join(input, n), target: cleanByStem.get(stemOf(n)) }));
  }
  if (input.toLowerCase().endsWith(".json")) {
    const { path, items } = readDataItems(input, INFERENCE_ITEM_SCHEMA);
    const base = dirname(path);
    const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
    return items.map(({ image }, i) => ({ name: `${String(i).padStart(4, "0")}_${stemOf(image[0])}`, input: at(image[0]), target: image[1] ? at(image[1]) : undefined }));
  }
  if (!isImagePath(input)) throw new Error(`${input}: not an image, a folder or a .json pairs file`);
  return [{ name: stemOf(input), input, target: opts.clean }];
}

export interface ItemScores {
  /** Degraded input vs target. */
  input: { psnr: number; ssim: number };
  /** Restored output vs target. */
  output: { psnr: number; ssim: number };
  /** The MAE's own reconstruction of the input vs target (the spec §9 baseline). */
  mae?: { psnr: number; ssim: number };
}

export interface ItemResult {
  name: string;
  input: string;
  output?: string;
  comparison?: string;
  scores?: ItemScores;
  error?: string;
  seconds?: number;
}

export interface RestoreFilesOptions {
  outDir: string;
  /** Also score the MAE's own reconstruction of the input (default true when a target is known). */
  maeBaseline?: boolean;
  cropBorder?: number;
  /** Free the MAE encoder while the LM generates (see `LM4LV.restore`): lower peak memory, a reload per image. */
  lowMemory?: boolean;
  onItem?: (done: number, total: number, result: ItemResult) => void;
}

/**
 * Spec §9 crops 4 px; images too small for that and an 11-px SSIM window (the tiny test models)
 * get size/8 instead.
 */
export function defaultCropBorder(size: number): number {
  return size >= 32 ? 4 : Math.floor(size / 8);
}

const score = (a: RgbImage, b: RgbImage, border: number) => ({ psnr: psnr(a, b, { cropBorder: border }), ssim: ssim(a, b, { cropBorder: border }) });

/** Restores every item; writes `<name>.png` and `<name>_compare.png` (input | restored [| target]). */
export async function restoreFiles(model: LM4LV, items: InferenceItem[], o: RestoreFilesOptions): Promise<ItemResult[]> {
  mkdirSync(o.outDir, { recursive: true });
  const border = o.cropBorder ?? defaultCropBorder(model.imageSize);
  const results: ItemResult[] = [];
  for (const [k, item] of items.entries()) {
    const t0 = performance.now();
    let r: ItemResult;
    try {
      const lq = await model.fit(await readImage(item.input));
      let hq: RgbImage | undefined;
      if (item.target) {
        const raw = await readImage(item.target);
        const src = await readImage(item.input);
        if (raw.width !== src.width || raw.height !== src.height) {
          throw new Error(`target ${item.target} is ${raw.width}×${raw.height} but the input ${item.input} is ${src.width}×${src.height}`);
        }
        hq = await model.fit(raw);
      }
      const { image, features } = await model.restore(lq, { releaseEncoder: o.lowMemory });
      features.dispose();
      const output = join(o.outDir, `${item.name}.png`);
      const comparison = join(o.outDir, `${item.name}_compare.png`);
      await writeImage(output, image);
      await writeImage(comparison, hconcat(hq ? [lq, image, hq] : [lq, image], 2));
      r = { name: item.name, input: item.input, output, comparison };
      if (hq) {
        r.scores = { input: score(hq, lq, border), output: score(hq, image, border) };
        if (o.maeBaseline ?? true) r.scores.mae = score(hq, (await model.reconstruct([lq]))[0], border);
      }
    } catch (e) {
      r = { name: item.name, input: item.input, error: (e as Error).message };
    }
    r.seconds = (performance.now() - t0) / 1000;
    results.push(r);
    o.onItem?.(k + 1, items.length, r);
  }
  return results;
}

/** Mean scores over the items that have them. */
export function meanScores(results: ItemResult[]): ItemScores | undefined {
  const scored = results.filter((r) => r.scores).map((r) => r.scores!);
  if (!scored.length) return undefined;
  const mean = (f: (s: ItemScores) => number | undefined) => scored.reduce((a, s) => a + (f(s) ?? 0), 0) / scored.length;
  const out: ItemScores = {
    input: { psnr: mean((s) => s.input.psnr), ssim: mean((s) => s.input.ssim) },
    output: { psnr: mean((s) => s.output.psnr), ssim: mean((s) => s.output.ssim) },
  };
  if (scored.every((s) => s.mae)) out.mae = { psnr: mean((s) => s.mae!.psnr), ssim: mean((s) => s.mae!.ssim) };
  return out;
}
