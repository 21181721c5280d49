/**
 * Rotary position embedding, Hugging Face convention ("rotate_half"):
 * a head vector of width hs is split into halves (x1 = x[:hs/2], x2 = x[hs/2:]) and
 * rotated pairwise (x1[i], x2[i]) by the angle position · inv_freq[i].
 */
import * as tf from "@tensorflow/tfjs";
import type { LlamaConfig } from "./config.js";

/**
 * inv_freq[i] = 1 / theta^(2i / head_dim), i = 0 .. head_dim/2 − 1, rounded to float32
 * as HF computes it, then rescaled by `rope_scaling` (linear or llama3).
 */
export function computeInvFreq(config: Pick<LlamaConfig, "head_dim" | "rope_theta" | "rope_scaling">): Float32Array {
  const hs = config.head_dim;
  const base = new Float32Array(hs / 2);
  for (let i = 0; i < hs / 2; i++) {
    const exponent = Math.fround((2 * i) / hs);
    base[i] = 1 / Math.fround(Math.pow(config.rope_theta, exponent));
  }
  const s = config.rope_scaling;
  if (!s) return base;
  if (s.rope_type === "linear") return base.map((f) => f / s.factor);
  // llama3: long wavelengths are divided by `factor`, short ones kept, the band in between interpolated.
  const lowFreqWavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const highFreqWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highFreqWavelen) return f;
    if (wavelen > lowFreqWavelen) return f / s.factor;
    const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/**
 * cos/sin tables for given positions.
 * positionIds (B, T) int → cos, sin (B, 1, T, hs), ready to broadcast over heads.
 */
export function ropeCosSin(positionIds: tf.Tensor2D, invFreq: Float32Array): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  return tf.tidy(() => {
    const [B, T] = positionIds.shape;
    const pos = positionIds.toFloat().reshape([B, T, 1]); // (B, T, 1)
    const freqs = pos.mul(tf.tensor3d(invFreq, [1, 1, invFreq.length])); // (B, T, hs/2)
    const emb = tf.concat([freqs, freqs], -1); // (B, T, hs)
    const hs = invFreq.length * 2;
    return {
      cos: emb.cos().reshape([B, 1, T, hs]) as tf.Tensor4D,
      sin: emb.sin().reshape([B, 1, T, hs]) as tf.Tensor4D,
    };
  });
}

/** (…, hs) → (…, hs): [x1, x2] ↦ [−x2, x1]. */
export function rotateHalf(x: tf.Tensor4D): tf.Tensor4D {
  const half = x.shape[3] / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  return tf.concat([x2.neg(), x1], 3) as tf.Tensor4D;
}

/** x (B, nh, T, hs), cos/sin (B, 1, T, hs) → x rotated, (B, nh, T, hs). */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return x.mul(cos).add(rotateHalf(x).mul(sin)) as tf.Tensor4D;
}
