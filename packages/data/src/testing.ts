/**
 * Test helpers of @lm4lv/data (the `@lm4lv/data/testing` subpath, for the workspace's tests; not part
 * of the public API): small deterministic images and the measures the degradation tests use.
 */
import type { RgbImage } from "@lm4lv/core";
import { Rng } from "./rng.js";

export function constantImage(width: number, height: number, value: number): RgbImage {
  return { width, height, data: new Float32Array(width * height * 3).fill(value) };
}

/** Uniform random values in [lo, hi). */
export function randomImage(width: number, height: number, seed: number, lo = 0, hi = 1): RgbImage {
  const r = new Rng(seed);
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = r.range(lo, hi);
  return { width, height, data };
}

/** A smooth colour pattern (gradients + a sinusoid), like a natural image's low frequencies. */
export function smoothImage(width: number, height: number): RgbImage {
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = x / (width - 1);
      data[i + 1] = y / (height - 1);
      data[i + 2] = 0.5 + 0.4 * Math.sin((x + y) / 5);
    }
  }
  return { width, height, data };
}

export function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

export function mse(a: RgbImage, b: RgbImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += (a.data[i] - b.data[i]) ** 2;
  return s / a.data.length;
}
