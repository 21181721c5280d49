/** The image samples the probes read from a folder of crops. */
import { join } from "node:path";
import { readImage, type RgbImage } from "@lm4lv/core";
import { listImages } from "@lm4lv/data";

export interface SampleOptions {
  /** Take every step-th image by name (default: spread over the folder, ⌊images / count⌋). */
  step?: number;
  /** File names left out before sampling (e.g. the held-out set when fitting). */
  exclude?: ReadonlySet<string>;
  /** Resize to size×size (bicubic); omit to keep each image's size. */
  size?: number;
}

/** At most `count` images of `dir`: every `step`-th by name, after the excluded ones are removed. */
export async function sampleImages(dir: string, count: number, opts: SampleOptions = {}): Promise<{ files: string[]; images: RgbImage[] }> {
  const all = listImages(dir).filter((f) => !opts.exclude?.has(f));
  if (!all.length) throw new Error(`${dir}: every image is excluded`);
  const step = opts.step ?? Math.max(1, Math.floor(all.length / count));
  const files = all.filter((_, i) => i % step === 0).slice(0, count);
  const images = await Promise.all(files.map((f) => readImage(join(dir, f), { size: opts.size })));
  return { files, images };
}
