/**
 * Degradations and spatial operations on `RgbImage` (HWC, float32 in [0, 1]).
 *
 * Every function takes `(img, params?, rng?)`, returns a NEW image and never
 * writes to its input. `params` fields are optional (defaults below, the
 * project defaults of spec §8); `rng` is an `Rng` or an integer seed.
 *
 * Output values stay float32: nothing is rounded to uint8 here (writing a PNG
 * rounds later, an error of at most 0.5/255). Gaussian noise can round on
 * request (`quantize: true`) to mimic data that went through an 8-bit file.
 */
import { decodeImage, encodeImage, type RgbImage } from "@lm4lv/core";
import { gaussianKernel } from "@lm4lv/metrics";
import { toRng, type Rng } from "./rng.js";

// ---------------------------------------------------------------- helpers

function checkImage(img: RgbImage, op: string): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${op}: image size must be positive integers, got ${width}×${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(`${op}: image data has ${data.length} values, expected ${height}×${width}×3 = ${width * height * 3}`);
  }
}

function checkParam(ok: boolean, op: string, name: string, value: unknown, want: string): void {
  if (!ok) throw new RangeError(`${op}: ${name} must be ${want}, got ${String(value)}`);
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * Mirror index without repeating the edge sample ("reflect" in numpy/PyTorch,
 * BORDER_REFLECT_101 in OpenCV): for n = 5, ... 2 1 | 0 1 2 3 4 | 3 2 ...
 * Works for any distance outside [0, n), also when the kernel is wider than the image.
 */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

// ---------------------------------------------------------------- Gaussian noise

export interface GaussianNoiseParams {
  /** Standard deviation in 0–255 units (50 → 50/255 on the [0,1] scale). */
  sigma: number;
  /** Round the result to the uint8 grid (k/255). */
  quantize: boolean;
}
export const GAUSSIAN_NOISE_DEFAULTS: GaussianNoiseParams = { sigma: 50, quantize: false };

/** out = clip(in + σ/255 · n), n ~ N(0,1) independently per pixel and channel. */
export function gaussianNoise(img: RgbImage, params: Partial<GaussianNoiseParams> = {}, rng: Rng | number = 0): RgbImage {
  const op = "gaussianNoise";
  checkImage(img, op);
  const { sigma, quantize } = { ...GAUSSIAN_NOISE_DEFAULTS, ...params };
  checkParam(Number.isFinite(sigma) && sigma >= 0, op, "sigma", sigma, "a number ≥ 0 (0–255 units)");
  const r = toRng(rng);
  const s = sigma / 255;
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = clamp01(img.data[i] + s * r.normal());
    out[i] = quantize ? Math.round(v * 255) / 255 : v;
  }
  return { width: img.width, height: img.height, data: out };
}

// ---------------------------------------------------------------- Gaussian blur

export interface GaussianBlurParams {
  /** Odd kernel side length in pixels. */
  kernelSize: number;
  /** Standard deviation in pixels. */
  sigma: number;
}
export const GAUSSIAN_BLUR_DEFAULTS: GaussianBlurParams = { kernelSize: 21, sigma: 3 };

/**
 * Gaussian blur with a kernelSize × kernelSize kernel (the outer product of the
 * normalised 1-D taps, so it sums to 1) and reflect padding (edge not repeated),
 * applied per channel as two separable passes in float64.
 */
export function gaussianBlur(img: RgbImage, params: Partial<GaussianBlurParams> = {}): RgbImage {
  const op = "gaussianBlur";
  checkImage(img, op);
  const { kernelSize, sigma } = { ...GAUSSIAN_BLUR_DEFAULTS, ...params };
  checkParam(Number.isInteger(kernelSize) && kernelSize > 0 && kernelSize % 2 === 1, op, "kernelSize", kernelSize, "an odd positive integer");
  checkParam(Number.isFinite(sigma) && sigma > 0, op, "sigma", sigma, "a number > 0");
  const { width: w, height: h, data } = img;
  const k = gaussianKernel(kernelSize, sigma); // the SSIM window's definition: exp(-d²/2σ²), d = -r..r, sum 1
  const r = (kernelSize - 1) / 2;

  // Horizontal pass: tmp[y, x, c] = Σ_j k[j] · in[y, reflect(x + j - r), c]
  const tmp = new Float64Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let a0 = 0, a1 = 0, a2 = 0;
      for (let j = 0; j < kernelSize; j++) {
        const src = (y * w + reflectIndex(x + j - r, w)) * 3;
        a0 += k[j] * data[src];
        a1 += k[j] * data[src + 1];
        a2 += k[j] * data[src + 2];
      }
      const dst = (y * w + x) * 3;
      tmp[dst] = a0;
      tmp[dst + 1] = a1;
      tmp[dst + 2] = a2;
    }
  }
  // Vertical pass: out[y, x, c] = Σ_i k[i] · tmp[reflect(y + i - r), x, c]
  const out = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let a0 = 0, a1 = 0, a2 = 0;
      for (let i = 0; i < kernelSize; i++) {
        const src = (reflectIndex(y + i - r, h) * w + x) * 3;
        a0 += k[i] * tmp[src];
        a1 += k[i] * tmp[src + 1];
        a2 += k[i] * tmp[src + 2];
      }
      const dst = (y * w + x) * 3;
      out[dst] = a0;
      out[dst + 1] = a1;
      out[dst + 2] = a2;
    }
  }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------- synthetic rain

export interface RainParams {
  /** Probability that a pixel seeds a streak. */
  density: number;
  /** Streak length in pixels. */
  length: number;
  /** Mean streak angle in degrees from vertical; positive leans the lower end to the right. */
  angle: number;
  /** The image's angle is drawn uniformly from angle ± angleJitter (one angle per image). */
  angleJitter: number;
  /** Scale of the streak layer added to the image. */
  brightness: number;
}
export const RAIN_DEFAULTS: RainParams = { density: 0.004, length: 20, angle: 10, angleJitter: 10, brightness: 0.8 };

/**
 * Motion-blur kernel of a straight streak: the segment of `length` pixels
 * through the kernel centre at `angleDeg` from vertical, sampled every 1/4 px
 * and splatted bilinearly; the taps sum to `length`, so a streak over one
 * isolated seed of value v has values ≈ v along its length.
 * Returns a (2r+1)² row-major kernel.
 */
export function streakKernel(length: number, angleDeg: number): { radius: number; taps: Float64Array } {
  const radius = Math.ceil(length / 2) + 1;
  const side = 2 * radius + 1;
  const taps = new Float64Array(side * side);
  const theta = (angleDeg * Math.PI) / 180;
  const dx = Math.sin(theta);
  const dy = Math.cos(theta);
  const samples = Math.max(2, Math.ceil(length * 4) + 1);
  const weight = length / samples;
  for (let s = 0; s < samples; s++) {
    const t = (s / (samples - 1) - 0.5) * length; // -L/2 .. L/2
    const px = radius + t * dx;
    const py = radius + t * dy;
    const x0 = Math.floor(px);
    const y0 = Math.floor(py);
    const fx = px - x0;
    const fy = py - y0;
    taps[y0 * side + x0] += weight * (1 - fx) * (1 - fy);
    taps[y0 * side + x0 + 1] += weight * fx * (1 - fy);
    taps[(y0 + 1) * side + x0] += weight * (1 - fx) * fy;
    taps[(y0 + 1) * side + x0 + 1] += weight * fx * fy;
  }
  return { radius, taps };
}

/**
 * Synthetic rain. Recipe:
 * 1. angle θ = angle + U(−angleJitter, angleJitter) degrees, one per image;
 * 2. a sparse noise layer: each pixel independently is a seed with probability
 *    `density`, with value U(0.5, 1); all other pixels 0;
 * 3. the layer is motion-blurred by `streakKernel(length, θ)` (zero padding),
 *    turning each seed into a streak; overlapping streaks add; clipped to 1;
 * 4. out = clip(in + brightness · streaks), the same value on R, G and B
 *    (streaks are achromatic and only brighten).
 */
export function rainStreaks(img: RgbImage, params: Partial<RainParams> = {}, rng: Rng | number = 0): RgbImage {
  const op = "rainStreaks";
  checkImage(img, op);
  const p = { ...RAIN_DEFAULTS, ...params };
  checkParam(Number.isFinite(p.density) && p.density >= 0 && p.density <= 1, op, "density", p.density, "in [0, 1]");
  checkParam(Number.isFinite(p.length) && p.length > 0, op, "length", p.length, "a number > 0 (pixels)");
  checkParam(Number.isFinite(p.angle), op, "angle", p.angle, "a finite number of degrees");
  checkParam(Number.isFinite(p.angleJitter) && p.angleJitter >= 0, op, "angleJitter", p.angleJitter, "a number ≥ 0");
  checkParam(Number.isFinite(p.brightness) && p.brightness >= 0, op, "brightness", p.brightness, "a number ≥ 0");
  const r = toRng(rng);
  const { width: w, height: h } = img;

  // 1. angle
  const theta = p.angle + p.angleJitter * (2 * r.uniform() - 1);
  // 2.–3. seeds splatted through the streak kernel (a sparse convolution)
  const { radius, taps } = streakKernel(p.length, theta);
  const side = 2 * radius + 1;
  const streaks = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (r.uniform() >= p.density) continue;
      const v = r.range(0.5, 1);
      for (let ky = 0; ky < side; ky++) {
        const yy = y + ky - radius;
        if (yy < 0 || yy >= h) continue;
        for (let kx = 0; kx < side; kx++) {
          const xx = x + kx - radius;
          const t = taps[ky * side + kx];
          if (t === 0 || xx < 0 || xx >= w) continue;
          streaks[yy * w + xx] += v * t;
        }
      }
    }
  }
  // 4. blend
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < w * h; i++) {
    const add = p.brightness * Math.min(1, streaks[i]);
    for (let c = 0; c < 3; c++) out[3 * i + c] = clamp01(img.data[3 * i + c] + add);
  }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------- salt and pepper

export interface SaltPepperParams {
  /** Probability that a pixel is replaced (half by salt = 1, half by pepper = 0). */
  ratio: number;
}
export const SALT_PEPPER_DEFAULTS: SaltPepperParams = { ratio: 0.1 };

/** Each pixel independently: with probability ratio/2 all channels → 0, with ratio/2 → 1, else unchanged. */
export function saltPepper(img: RgbImage, params: Partial<SaltPepperParams> = {}, rng: Rng | number = 0): RgbImage {
  const op = "saltPepper";
  checkImage(img, op);
  const { ratio } = { ...SALT_PEPPER_DEFAULTS, ...params };
  checkParam(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1, op, "ratio", ratio, "in [0, 1]");
  const r = toRng(rng);
  const out = new Float32Array(img.data);
  for (let i = 0; i < img.width * img.height; i++) {
    const u = r.uniform();
    if (u >= ratio) continue;
    const v = u < ratio / 2 ? 0 : 1;
    out[3 * i] = v;
    out[3 * i + 1] = v;
    out[3 * i + 2] = v;
  }
  return { width: img.width, height: img.height, data: out };
}

// ---------------------------------------------------------------- patch masking

export interface MaskParams {
  /** Patch side in pixels (16 at 224; scale it with the image, e.g. 4 at 56). */
  patch: number;
  /** Fraction of the patch grid set to `value`: exactly round(ratio · patches) patches. */
  ratio: number;
  /** Fill value of a masked patch. */
  value: number;
}
export const MASK_DEFAULTS: MaskParams = { patch: 16, ratio: 0.25, value: 0 };

/**
 * Random patch masking on a ⌈H/patch⌉ × ⌈W/patch⌉ grid (edge patches are cut
 * by the border). Exactly round(ratio · gridSize) distinct patches, chosen
 * uniformly, are filled with `value` on all channels.
 */
export function patchMask(img: RgbImage, params: Partial<MaskParams> = {}, rng: Rng | number = 0): RgbImage {
  const op = "patchMask";
  checkImage(img, op);
  const { patch, ratio, value } = { ...MASK_DEFAULTS, ...params };
  checkParam(Number.isInteger(patch) && patch > 0, op, "patch", patch, "a positive integer (pixels)");
  checkParam(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1, op, "ratio", ratio, "in [0, 1]");
  checkParam(Number.isFinite(value), op, "value", value, "a finite number");
  const r = toRng(rng);
  const { width: w, height: h } = img;
  const gw = Math.ceil(w / patch);
  const gh = Math.ceil(h / patch);
  const total = gw * gh;
  const count = Math.round(ratio * total);
  // Partial Fisher–Yates: the first `count` entries are a uniform sample without replacement.
  const ids = Array.from({ length: total }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + r.int(total - i);
    const t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
  }
  const out = new Float32Array(img.data);
  for (let n = 0; n < count; n++) {
    const py = Math.floor(ids[n] / gw);
    const px = ids[n] % gw;
    for (let y = py * patch; y < Math.min(h, (py + 1) * patch); y++) {
      out.fill(value, (y * w + px * patch) * 3, (y * w + Math.min(w, (px + 1) * patch)) * 3);
    }
  }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------- JPEG

export interface JpegParams {
  /** libjpeg quality 1–100 (sharp's encoder, 4:2:0 chroma subsampling). */
  quality: number;
}
export const JPEG_DEFAULTS: JpegParams = { quality: 10 };

/**
 * JPEG round trip at `quality` in memory through core's sharp-based encodeImage/decodeImage.
 * The result lies on the uint8 grid.
 */
export async function jpegCompress(img: RgbImage, params: Partial<JpegParams> = {}): Promise<RgbImage> {
  const op = "jpegCompress";
  checkImage(img, op);
  const { quality } = { ...JPEG_DEFAULTS, ...params };
  checkParam(Number.isInteger(quality) && quality >= 1 && quality <= 100, op, "quality", quality, "an integer in [1, 100]");
  return decodeImage(await encodeImage(img, { format: "jpeg", quality }), { label: "jpegCompress" });
}

// ---------------------------------------------------------------- spatial operations

/**
 * Rotation by k quarter turns counter-clockwise (as numpy.rot90 / torch.rot90
 * on an H×W image); k may be any integer. A W×H image becomes H×W for odd k.
 */
export function rotate90(img: RgbImage, k = 1): RgbImage {
  checkImage(img, "rotate90");
  checkParam(Number.isInteger(k), "rotate90", "k", k, "an integer number of quarter turns");
  const turns = ((k % 4) + 4) % 4;
  const { width: w, height: h, data } = img;
  const ow = turns % 2 === 1 ? h : w;
  const oh = turns % 2 === 1 ? w : h;
  const out = new Float32Array(data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      // (sx, sy): the source pixel that lands on output (x, y)
      let sx: number, sy: number;
      if (turns === 0) [sx, sy] = [x, y];
      else if (turns === 1) [sx, sy] = [w - 1 - y, x]; // CCW: out[y][x] = in[x][w-1-y]
      else if (turns === 2) [sx, sy] = [w - 1 - x, h - 1 - y];
      else [sx, sy] = [y, h - 1 - x]; // CW
      const src = (sy * w + sx) * 3;
      const dst = (y * ow + x) * 3;
      out[dst] = data[src];
      out[dst + 1] = data[src + 1];
      out[dst + 2] = data[src + 2];
    }
  }
  return { width: ow, height: oh, data: out };
}

/** Mirror left ↔ right. */
export function flipHorizontal(img: RgbImage): RgbImage {
  checkImage(img, "flipHorizontal");
  const { width: w, height: h, data } = img;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + (w - 1 - x)) * 3;
      const dst = (y * w + x) * 3;
      out[dst] = data[src];
      out[dst + 1] = data[src + 1];
      out[dst + 2] = data[src + 2];
    }
  }
  return { width: w, height: h, data: out };
}

/** Mirror top ↔ bottom. */
export function flipVertical(img: RgbImage): RgbImage {
  checkImage(img, "flipVertical");
  const { width: w, height: h, data } = img;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) out.set(data.subarray((h - 1 - y) * w * 3, (h - y) * w * 3), y * w * 3);
  return { width: w, height: h, data: out };
}

/** A copy of the image (the "repeat" sanity task). */
export function identity(img: RgbImage): RgbImage {
  checkImage(img, "identity");
  return { width: img.width, height: img.height, data: new Float32Array(img.data) };
}
