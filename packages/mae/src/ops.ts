/**
 * Pure tensor helpers of the MAE, each documented by shape.
 *
 * Layout conventions (as Hugging Face's ViTMAE):
 * - pixels are `[B, C, H, W]`, channels first;
 * - patches are numbered row-major over the `(H/p) × (W/p)` grid;
 * - one patch vector is ordered `(p, q, c)`: row inside the patch, column, channel.
 */
import * as tf from "@tensorflow/tfjs";
import { hwcToChw, chwToHwc, readImage } from "@lm4lv/core";
import type { RgbImage } from "@lm4lv/core";

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** `[B, C, H, W]` → `[B, (H/p)·(W/p), p·p·C]`, patch vector order (p, q, c). */
export function patchify(pixelValues: tf.Tensor4D, patchSize: number): tf.Tensor3D {
  const [b, c, h, w] = pixelValues.shape;
  if (h % patchSize !== 0 || w % patchSize !== 0) {
    throw new Error(`patchify: image ${h}×${w} is not divisible by patch size ${patchSize}`);
  }
  const gh = h / patchSize;
  const gw = w / patchSize;
  return tf.tidy(() => {
    const x = tf.reshape(pixelValues, [b, c, gh, patchSize, gw, patchSize]); // [B, C, gh, p, gw, q]
    const t = tf.transpose(x, [0, 2, 4, 3, 5, 1]); // [B, gh, gw, p, q, C]
    return tf.reshape(t, [b, gh * gw, patchSize * patchSize * c]) as tf.Tensor3D; // [B, N, p·q·C]
  });
}

/**
 * `[B, N, p·p·C]` → `[B, C, H, W]`, the inverse of `patchify`.
 * The grid is square (`N` a perfect square) unless `grid = [gh, gw]` is given.
 */
export function unpatchify(patches: tf.Tensor3D, patchSize: number, numChannels = 3, grid?: [number, number]): tf.Tensor4D {
  const [b, n, d] = patches.shape;
  if (d !== patchSize * patchSize * numChannels) {
    throw new Error(`unpatchify: patch vectors have ${d} values, expected ${patchSize}²·${numChannels} = ${patchSize * patchSize * numChannels}`);
  }
  const side = Math.round(Math.sqrt(n));
  const [gh, gw] = grid ?? [side, side];
  if (gh * gw !== n) throw new Error(`unpatchify: ${n} patches do not form a ${gh}×${gw} grid`);
  return tf.tidy(() => {
    const x = tf.reshape(patches, [b, gh, gw, patchSize, patchSize, numChannels]); // [B, gh, gw, p, q, C]
    const t = tf.transpose(x, [0, 5, 1, 3, 2, 4]); // [B, C, gh, p, gw, q]
    return tf.reshape(t, [b, numChannels, gh * patchSize, gw * patchSize]) as tf.Tensor4D; // [B, C, H, W]
  });
}

/**
 * Per-sample token gather: `out[b, k] = x[b, ids[b, k]]`; x `[B, L, D]`, ids `[B, K]` int32 → `[B, K, D]`.
 * Written as a one-hot matmul (exact: one product by 1, the rest by 0) because
 * tfjs-backend-wasm 4.22 returns wrong rows for `gather(..., batchDims = 1)` when B > 1 and
 * has no kernel for gather's gradient (UnsortedSegmentSum); a matmul works and trains everywhere.
 */
export function gatherTokens(x: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor3D {
  const l = x.shape[1];
  return tf.tidy(() => {
    const select = tf.cast(tf.oneHot(ids, l), "float32"); // [B, K, L]
    return tf.matMul(select, x) as tf.Tensor3D; // [B, K, D]
  });
}

/** Number of tokens kept by random masking: `floor(L · (1 − maskRatio))`, in float64 as HF (`int(...)`). */
export function lenKeep(numPatches: number, maskRatio: number): number {
  return Math.floor(numPatches * (1 - maskRatio));
}

/** Row-wise stable argsort of a `[B, L]` array (the order random masking draws patches in). */
export function argsortRows(values: ArrayLike<number>, b: number, l: number): Int32Array {
  const out = new Int32Array(b * l);
  const idx = new Array<number>(l);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < l; i++) idx[i] = i;
    const off = r * l;
    idx.sort((i, j) => values[off + i] - values[off + j] || i - j);
    for (let i = 0; i < l; i++) out[off + i] = idx[i];
  }
  return out;
}

export interface MaskingResult {
  /** `[B, lenKeep, D]` the kept tokens, in `argsort(noise)` order. */
  kept: tf.Tensor3D;
  /** `[B, L]` float32, 0 = kept, 1 = removed, in the original patch order. */
  mask: tf.Tensor2D;
  /** `[B, L]` int32, the inverse of the shuffle: `gather(shuffled, idsRestore)` restores patch order. */
  idsRestore: tf.Tensor2D;
}

/**
 * MAE random masking driven by `noise` (`[B, L]`, smaller = kept first): sorts the patches
 * by noise, keeps the first `lenKeep(L, maskRatio)`. `noise = arange(L)` with ratio 0 is
 * the identity (the LM4LV way of encoding).
 */
export function randomMasking(x: tf.Tensor3D, noise: tf.Tensor2D | ArrayLike<number>, maskRatio: number): MaskingResult {
  const [b, l] = x.shape;
  const noiseData = noise instanceof tf.Tensor ? noise.dataSync() : noise;
  if (noise instanceof tf.Tensor && (noise.shape[0] !== b || noise.shape[1] !== l)) {
    throw new Error(`randomMasking: noise has shape [${noise.shape}], expected [${b}, ${l}]`);
  }
  if (noiseData.length !== b * l) throw new Error(`randomMasking: noise has ${noiseData.length} values, expected ${b}×${l}`);
  if (!(maskRatio >= 0 && maskRatio < 1)) throw new Error(`randomMasking: mask ratio ${maskRatio} is not in [0, 1)`);
  const keep = lenKeep(l, maskRatio);
  const idsShuffle = argsortRows(noiseData, b, l); // [B, L]
  const restore = new Int32Array(b * l); // inverse permutation of each row
  const keepIds = new Int32Array(b * keep);
  const maskData = new Float32Array(b * l);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < l; i++) restore[r * l + idsShuffle[r * l + i]] = i;
    for (let i = 0; i < keep; i++) keepIds[r * keep + i] = idsShuffle[r * l + i];
    for (let i = 0; i < l; i++) maskData[r * l + i] = restore[r * l + i] < keep ? 0 : 1;
  }
  const kept = tf.tidy(() => gatherTokens(x, tf.tensor2d(keepIds, [b, keep], "int32"))); // [B, K, D]
  return {
    kept,
    mask: tf.tensor2d(maskData, [b, l]),
    idsRestore: tf.tensor2d(restore, [b, l], "int32"),
  };
}

/**
 * Fixed 2-D sin-cos position table of MAE, `[(cls ? 1 : 0) + g², D]` flat, computed in float64.
 * For patch `n = i·g + j` (row i, column j): the first D/2 values encode the column j,
 * the last D/2 the row i; each half is `[sin(pos·ω_k), cos(pos·ω_k)]`, `ω_k = 10000^(−k/(D/4))`.
 * The CLS row is zeros.
 */
export function sincosPositionEmbedding(embedDim: number, gridSize: number, clsToken = true): Float32Array {
  if (embedDim % 4 !== 0) throw new Error(`sincosPositionEmbedding: embedding size ${embedDim} is not a multiple of 4`);
  const quarter = embedDim / 4;
  const omega = new Float64Array(quarter);
  for (let k = 0; k < quarter; k++) omega[k] = 1 / Math.pow(10000, k / quarter);
  const offset = clsToken ? 1 : 0;
  const out = new Float32Array((offset + gridSize * gridSize) * embedDim);
  for (let i = 0; i < gridSize; i++) {
    for (let j = 0; j < gridSize; j++) {
      const row = (offset + i * gridSize + j) * embedDim;
      for (let k = 0; k < quarter; k++) {
        out[row + k] = Math.sin(j * omega[k]);
        out[row + quarter + k] = Math.cos(j * omega[k]);
        out[row + 2 * quarter + k] = Math.sin(i * omega[k]);
        out[row + 3 * quarter + k] = Math.cos(i * omega[k]);
      }
    }
  }
  return out;
}

function channelVector(values: readonly number[], c: number): tf.Tensor4D {
  if (c !== values.length) throw new Error(`ImageNet normalisation expects ${values.length} channels, got ${c}`);
  return tf.tensor4d(Float32Array.from(values), [1, c, 1, 1]);
}

/** `[B, 3, H, W]` in [0,1] → `(x − mean) / std` with ImageNet statistics. */
export function normalizeImageNet(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(x, channelVector(IMAGENET_MEAN, x.shape[1])), channelVector(IMAGENET_STD, x.shape[1])) as tf.Tensor4D);
}

/** Inverse of `normalizeImageNet`: `x · std + mean` (not clamped). */
export function denormalizeImageNet(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(tf.mul(x, channelVector(IMAGENET_STD, x.shape[1])), channelVector(IMAGENET_MEAN, x.shape[1])) as tf.Tensor4D);
}

/** Images (all the same size) in [0,1] → `[B, 3, H, W]`, not normalised. */
export function imagesToTensor(images: RgbImage[]): tf.Tensor4D {
  if (images.length === 0) throw new Error("imagesToTensor: no images");
  const { width, height } = images[0];
  const plane = 3 * width * height;
  const data = new Float32Array(images.length * plane);
  images.forEach((im, i) => {
    if (im.width !== width || im.height !== height) {
      throw new Error(`imagesToTensor: image ${i} is ${im.width}×${im.height}, expected ${width}×${height}`);
    }
    data.set(hwcToChw(im), i * plane);
  });
  return tf.tensor4d(data, [images.length, 3, height, width]);
}

/** `[B, 3, H, W]` in [0,1] → images; values are clamped to [0,1]. */
export function tensorToImages(x: tf.Tensor4D): RgbImage[] {
  const [b, c, h, w] = x.shape;
  if (c !== 3) throw new Error(`tensorToImages: expected 3 channels, got ${c}`);
  const data = tf.tidy(() => tf.clipByValue(x, 0, 1).dataSync() as Float32Array);
  const plane = 3 * h * w;
  const out: RgbImage[] = [];
  for (let i = 0; i < b; i++) out.push(chwToHwc(data.subarray(i * plane, (i + 1) * plane), h, w));
  return out;
}

/** Spec §1 pre-processing of in-memory images already at the model size: [0,1] → normalised `[B, 3, H, W]`. */
export function preprocessImages(images: RgbImage[]): tf.Tensor4D {
  return tf.tidy(() => normalizeImageNet(imagesToTensor(images)));
}

/** Spec §1 pre-processing of image files: bicubic resize to `imageSize`, [0,1], normalise → `[B, 3, S, S]`. */
export async function preprocessFiles(paths: string[], imageSize: number): Promise<tf.Tensor4D> {
  const images: RgbImage[] = [];
  for (const p of paths) images.push(await readImage(p, { size: imageSize }));
  return preprocessImages(images);
}

/** Normalised `[B, 3, H, W]` → de-normalised, clamped images (spec §1 decoder output). */
export function postprocess(pixelValues: tf.Tensor4D): RgbImage[] {
  const x = denormalizeImageNet(pixelValues);
  try {
    return tensorToImages(x);
  } finally {
    x.dispose();
  }
}

/** Exact GELU `0.5·x·(1 + erf(x/√2))` (HF "gelu"). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/** Tanh approximation of GELU (HF "gelu_new" / "gelu_pytorch_tanh"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}

/** The activation named by `hidden_act`. */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case "gelu": return gelu;
    case "gelu_new": case "gelu_pytorch_tanh": return geluTanh;
    case "relu": return (x) => tf.relu(x);
    case "silu": return (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    default: throw new Error(`unsupported hidden_act "${name}"`);
  }
}

/** LayerNorm over the last axis: `(x − mean) / √(var + eps) · weight + bias` (biased variance). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(normed, weight), bias);
  });
}

/** `x @ kernel + b` with a kernel `[in, out]` (a PyTorch linear weight transposed); x is `[..., in]`. */
export function linear(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [inDim, outDim] = kernel.shape;
    const flat = tf.reshape(x, [-1, inDim]); // [M, in]
    let y = tf.matMul(flat, kernel); // [M, out]
    if (bias) y = tf.add(y, bias);
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
  });
}
