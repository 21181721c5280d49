/**
 * PSNR and SSIM as LM4LV reports them (spec §9), following basicsr's
 * `calculate_psnr` / `calculate_ssim`:
 *
 * - images on the 0–255 scale in float64; a border of `cropBorder` pixels is
 *   removed from every side before anything else;
 * - optionally only the luma: Y = 16 + 65.481·R + 128.553·G + 24.966·B with
 *   R, G, B in [0, 1] (MATLAB's rgb2ycbcr, ITU-R BT.601), not rounded;
 * - PSNR = 20·log10(255 / √MSE) over all pixels and channels; identical → 100;
 * - SSIM per channel with an 11×11 Gaussian window (σ 1.5), only where the
 *   window fits inside the image ("valid"), C1 = (0.01·255)², C2 = (0.03·255)²;
 *   the mean of the SSIM map, then the mean over channels.
 */
import type { RgbImage } from "@lm4lv/core";

/** Interleaved 8-bit RGB (HWC), values 0–255. */
export interface Uint8RgbImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** What `psnr` and `ssim` accept: core's float image in [0, 1], or 8-bit RGB. */
export type MetricImage = RgbImage | Uint8RgbImage;

export interface MetricOptions {
  /** Pixels removed from each side before measuring (default 4). */
  cropBorder?: number;
  /** Measure the luma Y only, instead of R, G and B (default false). */
  yChannel?: boolean;
  /**
   * Float images only: round to 8 bits first, v → round(clamp(v, 0, 1)·255), as when
   * the image is saved and read back (default true; the reference measures saved
   * images). With false the value is v·255 unrounded.
   */
  quantize?: boolean;
}

export class MetricError extends Error {}

/** Pixels removed from each side when `cropBorder` is not given (the reference's 4). */
export const DEFAULT_CROP_BORDER = 4;

/** Value returned by `psnr` for identical images (the reference's convention, instead of +∞). */
export const PSNR_IDENTICAL = 100;

/** Side of the SSIM window and its Gaussian σ. */
export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

/** Planes of one image after conversion: `channels` arrays of height × width, float64 on 0–255. */
interface Planes {
  width: number;
  height: number;
  channels: Float64Array[];
}

function shapeOf(img: MetricImage): string {
  return `${img.height}×${img.width}×3`;
}

function checkImage(img: MetricImage, label: string): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new MetricError(`${label}: bad size ${width}×${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new MetricError(`${label}: ${data.length} values for ${height}×${width}×3 (expected RGB, HWC)`);
  }
}

function checkOptions(opts: MetricOptions): Required<MetricOptions> {
  const cropBorder = opts.cropBorder ?? DEFAULT_CROP_BORDER;
  if (!Number.isInteger(cropBorder) || cropBorder < 0) throw new MetricError(`cropBorder must be an integer ≥ 0, got ${cropBorder}`);
  return { cropBorder, yChannel: opts.yChannel ?? false, quantize: opts.quantize ?? true };
}

/** Value of element `i` on the 0–255 scale. */
function reader(img: MetricImage, quantize: boolean): (i: number) => number {
  const d = img.data;
  if (d instanceof Uint8Array || d instanceof Uint8ClampedArray) return (i) => d[i];
  if (quantize) return (i) => Math.round(Math.min(1, Math.max(0, d[i])) * 255);
  return (i) => d[i] * 255;
}

/** Crop the border, then split into R, G, B planes or compute Y. */
function toPlanes(img: MetricImage, o: Required<MetricOptions>, label: string): Planes {
  const b = o.cropBorder;
  const height = img.height - 2 * b;
  const width = img.width - 2 * b;
  if (height <= 0 || width <= 0) {
    throw new MetricError(`${label}: crop border ${b} leaves nothing of a ${img.height}×${img.width} image`);
  }
  const at = reader(img, o.quantize);
  const n = height * width;
  const r = new Float64Array(n);
  const g = new Float64Array(n);
  const bl = new Float64Array(n);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const src = ((y + b) * img.width + (x + b)) * 3;
      const dst = y * width + x;
      r[dst] = at(src);
      g[dst] = at(src + 1);
      bl[dst] = at(src + 2);
    }
  }
  if (!o.yChannel) return { width, height, channels: [r, g, bl] };
  const luma = new Float64Array(n);
  for (let i = 0; i < n; i++) luma[i] = rgbToY(r[i], g[i], bl[i]);
  return { width, height, channels: [luma] };
}

/** Luma of one pixel given on 0–255: MATLAB rgb2ycbcr's Y, on 0–255 (range 16–235), float64. */
export function rgbToY(r255: number, g255: number, b255: number): number {
  return 16 + (65.481 * (r255 / 255) + 128.553 * (g255 / 255) + 24.966 * (b255 / 255));
}

function prepare(a: MetricImage, b: MetricImage, opts: MetricOptions, what: string): [Planes, Planes] {
  checkImage(a, `${what}: first image`);
  checkImage(b, `${what}: second image`);
  if (a.width !== b.width || a.height !== b.height) {
    throw new MetricError(`${what}: image shapes differ: ${shapeOf(a)} vs ${shapeOf(b)} (height×width×channels)`);
  }
  const o = checkOptions(opts);
  return [toPlanes(a, o, `${what}: first image`), toPlanes(b, o, `${what}: second image`)];
}

/** PSNR in dB between two images of the same size; 100 when they are identical. */
export function psnr(a: MetricImage, b: MetricImage, opts: MetricOptions = {}): number {
  const [pa, pb] = prepare(a, b, opts, "psnr");
  let sum = 0;
  let count = 0;
  for (let c = 0; c < pa.channels.length; c++) {
    const x = pa.channels[c];
    const y = pb.channels[c];
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      sum += d * d;
    }
    count += x.length;
  }
  const mse = sum / count;
  if (mse === 0) return PSNR_IDENTICAL;
  return 20 * Math.log10(255 / Math.sqrt(mse));
}

/** Normalised 1-D Gaussian of `size` taps (as OpenCV's getGaussianKernel for size > 7), float64. */
export function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const mid = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - mid) ** 2) / (2 * sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/**
 * Gaussian-weighted local mean of a (h, w) plane at every position where the whole
 * window fits: output (h - size + 1, w - size + 1). The 2-D window is the outer product
 * of `k` with itself, applied as a row pass then a column pass.
 */
function filterValid(src: Float64Array, h: number, w: number, k: Float64Array): Float64Array {
  const size = k.length;
  const ow = w - size + 1;
  const oh = h - size + 1;
  const rows = new Float64Array(h * ow); // (h, ow): filtered along x
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let t = 0; t < size; t++) s += k[t] * src[y * w + x + t];
      rows[y * ow + x] = s;
    }
  }
  const out = new Float64Array(oh * ow); // (oh, ow): then along y
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let s = 0;
      for (let t = 0; t < size; t++) s += k[t] * rows[(y + t) * ow + x];
      out[y * ow + x] = s;
    }
  }
  return out;
}

/** Mean of the SSIM map of one channel pair (h, w). */
function ssimPlane(x: Float64Array, y: Float64Array, h: number, w: number, k: Float64Array): number {
  const n = h * w;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  const mu1 = filterValid(x, h, w, k);
  const mu2 = filterValid(y, h, w, k);
  const ex2 = filterValid(xx, h, w, k);
  const ey2 = filterValid(yy, h, w, k);
  const exy = filterValid(xy, h, w, k);
  let sum = 0;
  for (let i = 0; i < mu1.length; i++) {
    const m1 = mu1[i];
    const m2 = mu2[i];
    const s1 = ex2[i] - m1 * m1;
    const s2 = ey2[i] - m2 * m2;
    const s12 = exy[i] - m1 * m2;
    sum += ((2 * m1 * m2 + C1) * (2 * s12 + C2)) / ((m1 * m1 + m2 * m2 + C1) * (s1 + s2 + C2));
  }
  return sum / mu1.length;
}

/** SSIM between two images of the same size (1 when identical). */
export function ssim(a: MetricImage, b: MetricImage, opts: MetricOptions = {}): number {
  const [pa, pb] = prepare(a, b, opts, "ssim");
  const { height: h, width: w } = pa;
  if (h < SSIM_WINDOW || w < SSIM_WINDOW) {
    throw new MetricError(
      `ssim: after cropping the images are ${h}×${w}, smaller than the ${SSIM_WINDOW}×${SSIM_WINDOW} window`,
    );
  }
  const k = gaussianKernel(SSIM_WINDOW, SSIM_SIGMA);
  let total = 0;
  for (let c = 0; c < pa.channels.length; c++) total += ssimPlane(pa.channels[c], pb.channels[c], h, w, k);
  return total / pa.channels.length;
}
