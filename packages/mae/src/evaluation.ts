/**
 * How well an MAE reconstructs: images in, reconstructions out (encode without masking, decode),
 * PSNR/SSIM over a set (spec §9), and the sample grid a training run writes (input |
 * reconstruction, and with masking the masked input and the prediction with the visible
 * patches pasted back).
 */
import * as tf from "@tensorflow/tfjs";
import type { RgbImage } from "@lm4lv/core";
import { psnr, ssim } from "@lm4lv/metrics";
import { TrainRng, imageGrid } from "@lm4lv/train";
import type { ViTMAE } from "./model.js";
import { denormalizeImageNet, normalizeImageNet, patchify, tensorToImages, unpatchify } from "./ops.js";
import { ImageSet } from "./image-set.js";

/** Encode (no masking) + decode → images in [0,1], clamped. */
export function reconstructImages(mae: ViTMAE, pixels01: tf.Tensor4D, batchSize = 16): RgbImage[] {
  const out: RgbImage[] = [];
  const b = pixels01.shape[0];
  for (let i = 0; i < b; i += batchSize) {
    const recon01 = tf.tidy(() => {
      const chunk = tf.slice(pixels01, [i, 0, 0, 0], [Math.min(batchSize, b - i), -1, -1, -1]) as tf.Tensor4D; // [b, 3, S, S]
      const feats = mae.encodeSync(normalizeImageNet(chunk)); // [b, 1+N, D]
      return denormalizeImageNet(mae.decodeSync(feats)); // [b, 3, S, S]
    });
    out.push(...tensorToImages(recon01));
    recon01.dispose();
  }
  return out;
}

export interface ReconstructionScore {
  /** Mean PSNR (dB) and SSIM over the images (spec §9: RGB, 8-bit, crop border). */
  psnr: number;
  ssim: number;
  count: number;
}

/** Reconstruction PSNR/SSIM of an image set (or a folder, resized to the model size). */
export async function evaluateReconstruction(mae: ViTMAE, images: ImageSet | string, opts: { cropBorder?: number; limit?: number; batchSize?: number } = {}): Promise<ReconstructionScore> {
  const set = typeof images === "string" ? await ImageSet.load(images, mae.imageSize, { limit: opts.limit }) : images;
  const count = Math.min(set.length, opts.limit && opts.limit > 0 ? opts.limit : set.length);
  const indices = Array.from({ length: count }, (_, i) => i);
  const input = set.tensor(indices);
  const originals = tensorToImages(input);
  const recons = reconstructImages(mae, input, opts.batchSize);
  input.dispose();
  const cropBorder = opts.cropBorder ?? 4;
  let p = 0;
  let s = 0;
  for (let i = 0; i < count; i++) {
    p += psnr(originals[i], recons[i], { cropBorder });
    s += ssim(originals[i], recons[i], { cropBorder });
  }
  return { psnr: p / count, ssim: s / count, count };
}

/**
 * A sample grid, one row per image: input | reconstruction (no masking); with `maskRatio` > 0
 * also the masked input and the masked prediction with the visible patches pasted back.
 */
export function sampleGrid(mae: ViTMAE, pixels01: tf.Tensor4D, opts: { maskRatio?: number; seed?: number; normPixLoss?: boolean } = {}): RgbImage {
  const inputs = tensorToImages(pixels01);
  const recons = reconstructImages(mae, pixels01);
  const rows: RgbImage[][] = inputs.map((im, i) => [im, recons[i]]);
  const labels: string[][] = inputs.map(() => ["INPUT", "RECON"]);
  const ratio = opts.maskRatio ?? 0;
  if (ratio > 0) {
    const b = pixels01.shape[0];
    const rng = new TrainRng(opts.seed ?? 0);
    const noise = tf.tensor2d(Float32Array.from({ length: b * mae.numPatches }, () => rng.uniform()), [b, mae.numPatches]);
    const [masked, pasted] = tf.tidy(() => {
      const p = mae.patchSize;
      const pixels = normalizeImageNet(pixels01);
      const out = mae.forward(pixels, { noise, maskRatio: ratio });
      const target = patchify(pixels, p); // [B, N, P]
      let pred: tf.Tensor = out.logits; // [B, N, P]
      if (opts.normPixLoss ?? mae.config.norm_pix_loss) {
        const { mean, variance } = tf.moments(target, -1, true);
        const n = target.shape[2];
        pred = tf.add(tf.mul(pred, tf.sqrt(tf.add(tf.mul(variance, n / (n - 1)), 1e-6))), mean);
      }
      const removed = tf.expandDims(out.mask, -1); // [B, N, 1]
      const kept = tf.sub(1, removed);
      const gray = tf.mul(target, kept); // removed patches → 0 = the mean colour
      const paste = tf.add(tf.mul(pred, removed), tf.mul(target, kept));
      const toImg = (x: tf.Tensor) => tf.clipByValue(denormalizeImageNet(unpatchify(x as tf.Tensor3D, p, 3)), 0, 1);
      return [toImg(gray), toImg(paste)] as tf.Tensor4D[];
    });
    noise.dispose();
    const mImgs = tensorToImages(masked);
    const pImgs = tensorToImages(pasted);
    masked.dispose();
    pasted.dispose();
    rows.forEach((r, i) => r.push(mImgs[i], pImgs[i]));
    labels.forEach((l) => l.push("MASKED", "PRED"));
  }
  return imageGrid(rows, labels);
}
