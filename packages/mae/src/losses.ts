/**
 * Training losses of the MAE: the pre-training objective (HF `forward_loss`) and the
 * spec §6 decoder fine-tuning loss (L1 on de-normalised reconstructions, optional LPIPS).
 */
import * as tf from "@tensorflow/tfjs";
import { denormalizeImageNet } from "./ops.js";

/** HF's epsilon in the norm-pix target: `(t − mean) / √(var + 1e-6)`. */
export const NORM_PIX_EPS = 1e-6;

/**
 * MAE pre-training loss: per-patch MSE averaged over the patch vector, then averaged over the
 * removed patches only. `pred`, `target`: `[B, N, P]` (target = patchify(pixel_values));
 * `mask`: `[B, N]`, 1 = removed. With `normPixLoss` each target patch is standardised by its
 * own mean and unbiased variance (as `torch.var`). No removed patch → NaN (0/0), as HF.
 */
export function maePretrainingLoss(pred: tf.Tensor3D, target: tf.Tensor3D, mask: tf.Tensor2D, opts: { normPixLoss?: boolean } = {}): tf.Scalar {
  if (pred.shape.join() !== target.shape.join()) {
    throw new Error(`maePretrainingLoss: pred [${pred.shape}] and target [${target.shape}] differ`);
  }
  if (mask.shape[0] !== pred.shape[0] || mask.shape[1] !== pred.shape[1]) {
    throw new Error(`maePretrainingLoss: mask [${mask.shape}] does not match pred [${pred.shape}]`);
  }
  return tf.tidy(() => {
    let t: tf.Tensor = target; // [B, N, P]
    if (opts.normPixLoss) {
      const p = target.shape[2];
      const { mean, variance } = tf.moments(target, -1, true); // [B, N, 1], biased
      const unbiased = tf.mul(variance, p / (p - 1));
      t = tf.div(tf.sub(target, mean), tf.sqrt(tf.add(unbiased, NORM_PIX_EPS)));
    }
    const perPatch = tf.mean(tf.squaredDifference(pred, t), -1); // [B, N]
    return tf.div(tf.sum(tf.mul(perPatch, mask)), tf.sum(mask)) as tf.Scalar;
  });
}

export interface DecoderLossOptions {
  /** Perceptual term on [0,1] images `[B, 3, H, W]`, e.g. LPIPS; added with `perceptualWeight`. */
  perceptual?: (recon01: tf.Tensor4D, target01: tf.Tensor4D) => tf.Scalar;
  /** λ of spec §6 (default 1). */
  perceptualWeight?: number;
}

/**
 * Spec §6 decoder fine-tuning loss: `mean |denorm(recon) − target|` (+ λ·perceptual).
 * `reconNormalised`: decoder output `[B, 3, H, W]` in normalised space; `target01`: the
 * input image in [0,1]. The reconstruction is not clamped, so gradients reach every pixel.
 */
export function decoderFinetuneLoss(reconNormalised: tf.Tensor4D, target01: tf.Tensor4D, opts: DecoderLossOptions = {}): tf.Scalar {
  if (reconNormalised.shape.join() !== target01.shape.join()) {
    throw new Error(`decoderFinetuneLoss: reconstruction [${reconNormalised.shape}] and target [${target01.shape}] differ`);
  }
  return tf.tidy(() => {
    const recon01 = denormalizeImageNet(reconNormalised); // [B, 3, H, W]
    let loss = tf.mean(tf.abs(tf.sub(recon01, target01))) as tf.Scalar;
    if (opts.perceptual) loss = tf.add(loss, tf.mul(opts.perceptual(recon01, target01), opts.perceptualWeight ?? 1)) as tf.Scalar;
    return loss;
  });
}
