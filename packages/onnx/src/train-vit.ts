/**
 * ViTMAE training graphs for ONNX Runtime: the forward pass and loss of `@lm4lv/mae`, op for
 * op, with the backward pass appended by `finishTrainingGraph` (see `training.ts`).
 *
 *   pre-training  (HF ViTMAEForPreTraining, `mae.forward(pixels, { noise, maskRatio, normPixLoss })`)
 *     inputs   pixel_values [B, C, S, S] normalised
 *              ids_keep     [B·K]  int64  flat row of each kept patch in [B·N]      ┐ from the noise,
 *              ids_restore  [B·N]  int64  flat row of each patch in the shuffled   │ `maeMaskingFeeds`
 *                                         [B·N] decoder tokens                     │
 *              mask         [B, N] float  1 = removed                              ┘
 *     stages   patchify → patch embedding (MatMul with the conv weight) + pos → keep K patches
 *              (Gather) → CLS in front → encoder → decoder_embed → mask tokens, unshuffle
 *              (Gather) → + decoder_pos_embed → decoder → pred → MSE on removed patches
 *
 *   decoder fine-tuning (spec §6, `maeDecoderFinetuneTask` of @lm4lv/mae)
 *     inputs   pixels01 [B, C, S, S] in [0,1]
 *     stages   normalise → encoder (frozen: initializers), no masking → decoder → unpatchify →
 *              de-normalise → mean |recon01 − pixels01|
 *
 * Every weight is declared with `g.param(<HF name>, ..., <HF shape>)` from the model's
 * `readParameter` (its `namedParameters()`, one at a time): Linear weights are `[out, in]` and enter their MatMul through a Transpose
 * (folded by ONNX Runtime for initializers), the patch embedding stays `[D, C, p, p]`, q/k/v stay
 * three linears and position embeddings are sliced in the graph, so the trainable inputs are
 * exactly the trainer's variables (by name and layout) and their gradients come back the same
 * way. Names not listed as trainable (the fixed sin-cos position embeddings, the frozen encoder)
 * are initializers. Shapes in comments: B batch, N patches, K kept patches, T tokens, D width,
 * P = p·p·C values per patch.
 */
import * as ort from "onnxruntime-node";
import type * as tf from "@tensorflow/tfjs";
import type { MaeBatch, MaeEngineRun, MaeGradients, ViTMAE } from "@lm4lv/mae";
import { IMAGENET_MEAN, IMAGENET_STD, NORM_PIX_EPS, argsortRows, expectedWeights, lenKeep } from "@lm4lv/mae";
import { OnnxGraph } from "./graph.js";
import { activation, layerNorm, mergeHeads, splitHeads } from "./layers.js";
import { OrtTrainingSession, finishTrainingGraph } from "./training.js";

// --- Parameters ----------------------------------------------------------------------------------

/** The model's weights declared on demand as graph parameters (inputs when trainable), once each. */
class MaeParams {
  private readonly declared = new Map<string, string>();
  private readonly names: Set<string>;

  constructor(
    readonly g: OnnxGraph,
    private readonly mae: ViTMAE,
  ) {
    this.names = parameterNames(mae);
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  /** The value of weight `name`, HF layout (read from the model once, as a copy). */
  get(name: string): string {
    let v = this.declared.get(name);
    if (v) return v;
    if (!this.names.has(name)) throw new Error(`${this.g.name}: the model has no parameter "${name}"`);
    const t = this.mae.readParameter(name);
    v = this.g.param(name, t.data, t.shape);
    this.declared.set(name, v);
    return v;
  }

  /** `x [..., in] → [..., out]` with the Linear `<prefix>.weight` (`[out, in]`) and optional bias. */
  linear(x: string, prefix: string): string {
    const kernel = this.g.op("Transpose", [this.get(`${prefix}.weight`)], { perm: [1, 0] }); // [in, out]
    const y = this.g.op("MatMul", [x, kernel]);
    return this.has(`${prefix}.bias`) ? this.g.op("Add", [y, this.get(`${prefix}.bias`)]) : y;
  }
}

/** The HF names of the model's parameters (its config's table). */
function parameterNames(mae: ViTMAE): Set<string> {
  return new Set(expectedWeights(mae.config).map((s) => s.name));
}

function checkTrainable(where: string, mae: ViTMAE, trainable: readonly string[], allowed: (name: string) => boolean, why: string): void {
  const names = parameterNames(mae);
  for (const name of trainable) {
    if (!names.has(name)) throw new Error(`${where}: trainable parameter "${name}" is not a weight of the model`);
    if (!allowed(name)) throw new Error(`${where}: parameter "${name}" cannot be trainable (${why})`);
  }
}

function checkBatch(where: string, batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`${where}: batch must be a positive integer, got ${batch}`);
}

// --- Pieces, in forward order --------------------------------------------------------------------

/** `[B, C, S, S]` → `[B, N, P]`, patch vector order (p, q, c) as `patchify` of @lm4lv/mae. */
function patchify(g: OnnxGraph, pixels: string, b: number, c: number, s: number, p: number): string {
  const gs = s / p;
  const x = g.op("Reshape", [pixels, g.i64([b, c, gs, p, gs, p])]); // [B, C, gh, p, gw, q]
  const t = g.op("Transpose", [x], { perm: [0, 2, 4, 3, 5, 1] }); // [B, gh, gw, p, q, C]
  return g.op("Reshape", [t, g.i64([b, gs * gs, p * p * c])]); // [B, N, P]
}

/** `[B, N, P]` → `[B, C, S, S]`, the inverse of `patchify`. */
function unpatchify(g: OnnxGraph, patches: string, b: number, c: number, s: number, p: number): string {
  const gs = s / p;
  const x = g.op("Reshape", [patches, g.i64([b, gs, gs, p, p, c])]); // [B, gh, gw, p, q, C]
  const t = g.op("Transpose", [x], { perm: [0, 5, 1, 3, 2, 4] }); // [B, C, gh, p, gw, q]
  return g.op("Reshape", [t, g.i64([b, c, s, s])]); // [B, C, S, S]
}

/** `x [B, T, D]`, positions [from, to) of axis 1. */
function sliceTokens(g: OnnxGraph, x: string, from: number, to: number): string {
  return g.op("Slice", [x, g.i64([from]), g.i64([to]), g.i64([1])]);
}

/** Per-sample row gather `x [B, L, D]` → `[B, M, D]` through flat indices `[B·M]` into `[B·L]` (Gather axis 0). */
function gatherRows(g: OnnxGraph, x: string, flatIds: string, b: number, m: number): string {
  const [, l, d] = g.shape(x);
  const flat = g.op("Reshape", [x, g.i64([b * l, d])]); // [B·L, D]
  const rows = g.op("Gather", [flat, flatIds], { axis: 0 }); // [B·M, D]
  return g.op("Reshape", [rows, g.i64([b, m, d])]); // [B, M, D]
}

/** Patch embedding (the stride-p conv as a matmul over patches) plus the patch position embedding: `[B, N, D]`. */
function embedPatches(P: MaeParams, pixels: string, mae: ViTMAE, b: number): string {
  const { g } = P;
  const { image_size: s, num_channels: c, patch_size: p, hidden_size: d } = mae.config;
  const n = mae.numPatches;
  const patches = patchify(g, pixels, b, c, s, p); // [B, N, P]
  // conv weight [D, C, p, q] → [p, q, C, D] → [p·q·C, D], the patch vector order
  const conv = P.get("vit.embeddings.patch_embeddings.projection.weight"); // [D, C, p, p]
  const kernel = g.op("Reshape", [g.op("Transpose", [conv], { perm: [2, 3, 1, 0] }), g.i64([p * p * c, d])]); // [P, D]
  const x = g.op("Add", [g.op("MatMul", [patches, kernel]), P.get("vit.embeddings.patch_embeddings.projection.bias")]); // [B, N, D]
  const pos = sliceTokens(g, P.get("vit.embeddings.position_embeddings"), 1, 1 + n); // [1, N, D]
  return g.op("Add", [x, pos]); // [B, N, D]
}

/** `[B, T, D]` → `[B, 1+T, D]` with CLS (+ its position embedding) in front. */
function prependCls(P: MaeParams, x: string, b: number, d: number): string {
  const { g } = P;
  const pos0 = sliceTokens(g, P.get("vit.embeddings.position_embeddings"), 0, 1); // [1, 1, D]
  const cls = g.op("Expand", [g.op("Add", [P.get("vit.embeddings.cls_token"), pos0]), g.i64([b, 1, d])]); // [B, 1, D]
  return g.op("Concat", [cls, x], { axis: 1 }); // [B, 1+T, D]
}

/** Multi-head self-attention, separate q/k/v linears: `[B, T, D]` → `[B, T, D]`. */
function attention(P: MaeParams, x: string, prefix: string, heads: number): string {
  const { g } = P;
  const d = g.shape(x)[2];
  const hd = d / heads;
  const proj = (name: string) => splitHeads(g, P.linear(x, `${prefix}.attention.attention.${name}`), heads, hd); // [B, H, T, hd]
  const q = proj("query");
  const k = proj("key");
  const v = proj("value");
  const kt = g.op("Transpose", [k], { perm: [0, 1, 3, 2] }); // [B, H, hd, T]
  const scores = g.op("Mul", [g.op("MatMul", [q, kt]), g.f32([1 / Math.sqrt(hd)])]); // [B, H, T, T]
  const probs = g.op("Softmax", [scores], { axis: -1 });
  const ctx = mergeHeads(g, g.op("MatMul", [probs, v]), heads, hd); // [B, T, D]
  return P.linear(ctx, `${prefix}.attention.output.dense`);
}

/** Pre-LN transformer block (HF ViTMAELayer): x + attn(LN(x)); h + MLP(LN(h)). `[B, T, D]` → `[B, T, D]`. */
function block(P: MaeParams, x: string, prefix: string, heads: number, mae: ViTMAE): string {
  const { g } = P;
  const eps = mae.config.layer_norm_eps;
  const normed = layerNorm(g, x, P.get(`${prefix}.layernorm_before.weight`), P.get(`${prefix}.layernorm_before.bias`), eps);
  const h = g.op("Add", [x, attention(P, normed, prefix, heads)]); // [B, T, D]
  const normed2 = layerNorm(g, h, P.get(`${prefix}.layernorm_after.weight`), P.get(`${prefix}.layernorm_after.bias`), eps);
  const up = activation(g, P.linear(normed2, `${prefix}.intermediate.dense`), mae.config.hidden_act); // [B, T, mlp]
  return g.op("Add", [h, P.linear(up, `${prefix}.output.dense`)]); // [B, T, D]
}

/** Encoder blocks then the final LayerNorm: `[B, T, D]` → `[B, T, D]`. */
function encoder(P: MaeParams, x: string, mae: ViTMAE): string {
  let h = x;
  for (let i = 0; i < mae.config.num_hidden_layers; i++) h = block(P, h, `vit.encoder.layer.${i}`, mae.config.num_attention_heads, mae);
  return layerNorm(P.g, h, P.get("vit.layernorm.weight"), P.get("vit.layernorm.bias"), mae.config.layer_norm_eps);
}

/** Decoder from the `[B, 1+N, Dd]` tokens in patch order (CLS first) to `[B, N, P]` predictions (CLS dropped). */
function decoderBlocks(P: MaeParams, x: string, mae: ViTMAE): string {
  const { g } = P;
  const n = mae.numPatches;
  let h = g.op("Add", [x, P.get("decoder.decoder_pos_embed")]); // [B, 1+N, Dd]
  for (let i = 0; i < mae.config.decoder_num_hidden_layers; i++) h = block(P, h, `decoder.decoder_layers.${i}`, mae.config.decoder_num_attention_heads, mae);
  h = layerNorm(g, h, P.get("decoder.decoder_norm.weight"), P.get("decoder.decoder_norm.bias"), mae.config.layer_norm_eps);
  const pred = P.linear(h, "decoder.decoder_pred"); // [B, 1+N, P]
  return sliceTokens(g, pred, 1, 1 + n); // [B, N, P]
}

/** `[B, C, H, W]` per-channel constant `[1, C, 1, 1]`. */
function channelConst(g: OnnxGraph, values: readonly number[], c: number): string {
  if (values.length !== c) throw new Error(`ImageNet normalisation expects ${values.length} channels, the model has ${c}`);
  return g.f32([...values], [1, c, 1, 1]);
}

// --- Pre-training --------------------------------------------------------------------------------

export interface MaePretrainGraphOptions {
  /** Images per step (the graph's static batch size). */
  batch: number;
  /** Default: `config.mask_ratio`. */
  maskRatio?: number;
  /** Default: `config.norm_pix_loss`. */
  normPixLoss?: boolean;
  /** HF names of the weights fed as inputs and differentiated (the others become initializers). */
  trainable: readonly string[];
  /** No backward pass (benchmarks). */
  forwardOnly?: boolean;
}

/** Names of the pre-training graph's batch inputs. */
export const MAE_PRETRAIN_INPUTS = ["pixel_values", "ids_keep", "ids_restore", "mask"] as const;

/**
 * The masked pre-training graph of `mae` (loss of `mae.forward`, gradients of the trainable
 * weights), finished with `finishTrainingGraph`: outputs `loss` and `grad.<name>`.
 */
export function buildMaePretrainGraph(mae: ViTMAE, opts: MaePretrainGraphOptions): OnnxGraph {
  const where = "buildMaePretrainGraph";
  checkBatch(where, opts.batch);
  checkTrainable(where, mae, opts.trainable, () => true, "");
  const c = mae.config;
  const { image_size: s, num_channels: ch, patch_size: p, hidden_size: d, decoder_hidden_size: dd } = c;
  const b = opts.batch;
  const n = mae.numPatches;
  const maskRatio = opts.maskRatio ?? c.mask_ratio;
  if (!(maskRatio >= 0 && maskRatio < 1)) throw new Error(`${where}: mask ratio ${maskRatio} is not in [0, 1)`);
  const k = lenKeep(n, maskRatio);
  if (k < 1) throw new Error(`${where}: mask ratio ${maskRatio} keeps no patch of ${n}`);
  const normPix = opts.normPixLoss ?? c.norm_pix_loss;

  const g = new OnnxGraph("vit_mae_pretrain", { trainable: opts.trainable });
  const P = new MaeParams(g, mae);
  const pixels = g.input("pixel_values", "float32", [b, ch, s, s]);
  const idsKeep = g.input("ids_keep", "int64", [b * k]);
  const idsRestore = g.input("ids_restore", "int64", [b * n]);
  const mask = g.input("mask", "float32", [b, n]);

  // Encoder on the kept patches.
  const patches = embedPatches(P, pixels, mae, b); // [B, N, D]
  const kept = gatherRows(g, patches, idsKeep, b, k); // [B, K, D] in noise order
  const latent = encoder(P, prependCls(P, kept, b, d), mae); // [B, 1+K, D]

  // Decoder: mask tokens appended, patch order restored.
  const x = P.linear(latent, "decoder.decoder_embed"); // [B, 1+K, Dd]
  const cls = sliceTokens(g, x, 0, 1); // [B, 1, Dd]
  let tokens = sliceTokens(g, x, 1, 1 + k); // [B, K, Dd]
  if (k < n) {
    const maskTokens = g.op("Expand", [P.get("decoder.mask_token"), g.i64([b, n - k, dd])]); // [B, N−K, Dd]
    tokens = g.op("Concat", [tokens, maskTokens], { axis: 1 }); // [B, N, Dd] shuffled
  }
  tokens = gatherRows(g, tokens, idsRestore, b, n); // [B, N, Dd] patch order
  const pred = decoderBlocks(P, g.op("Concat", [cls, tokens], { axis: 1 }), mae); // [B, N, P]

  // Loss (HF forward_loss): per-patch MSE, mean over the removed patches.
  let target = patchify(g, pixels, b, ch, s, p); // [B, N, P]
  if (normPix) {
    const pp = p * p * ch;
    const mean = g.op("ReduceMean", [target], { axes: [-1], keepdims: 1 }); // [B, N, 1]
    const centred = g.op("Sub", [target, mean]);
    const variance = g.op("ReduceMean", [g.op("Mul", [centred, centred])], { axes: [-1], keepdims: 1 }); // biased
    const unbiased = g.op("Mul", [variance, g.f32([pp / (pp - 1)])]);
    target = g.op("Div", [centred, g.op("Sqrt", [g.op("Add", [unbiased, g.f32([NORM_PIX_EPS])])])]);
  }
  const diff = g.op("Sub", [pred, target]);
  const perPatch = g.op("ReduceMean", [g.op("Mul", [diff, diff])], { axes: [-1], keepdims: 0 }); // [B, N]
  const removed = g.op("ReduceSum", [g.op("Mul", [perPatch, mask])], { keepdims: 0 }); // []
  const loss = g.op("Div", [removed, g.op("ReduceSum", [mask], { keepdims: 0 })]); // []
  finishTrainingGraph(g, loss, {}, { forwardOnly: opts.forwardOnly });
  return g;
}

/** The masking inputs of the pre-training graph (ORT tensors, keyed by input name). */
export interface MaeMaskingFeeds {
  ids_keep: ort.Tensor;
  ids_restore: ort.Tensor;
  mask: ort.Tensor;
}


/**
 * The masking inputs of the pre-training graph from `[B, N]` sorting noise (smaller = kept
 * first), exactly as `randomMasking` of @lm4lv/mae decides them (same stable sort and ties):
 * `ids_keep [B·K]` and `ids_restore [B·N]` as flat int64 row indices, `mask [B, N]` (1 = removed).
 */
export function maeMaskingFeeds(noise: ArrayLike<number>, batch: number, numPatches: number, maskRatio: number): MaeMaskingFeeds {
  const b = batch;
  const n = numPatches;
  if (noise.length !== b * n) throw new Error(`maeMaskingFeeds: noise has ${noise.length} values, expected ${b}×${n}`);
  if (!(maskRatio >= 0 && maskRatio < 1)) throw new Error(`maeMaskingFeeds: mask ratio ${maskRatio} is not in [0, 1)`);
  const k = lenKeep(n, maskRatio);
  const shuffle = argsortRows(noise, b, n); // [B, N] patch at each shuffled position
  const keep = new BigInt64Array(b * k);
  const restore = new BigInt64Array(b * n);
  const mask = new Float32Array(b * n);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < k; i++) keep[r * k + i] = BigInt(r * n + shuffle[r * n + i]);
    for (let i = 0; i < n; i++) {
      const patch = shuffle[r * n + i]; // shuffled position i holds this patch
      restore[r * n + patch] = BigInt(r * n + i);
      mask[r * n + patch] = i < k ? 0 : 1;
    }
  }
  return {
    ids_keep: new ort.Tensor("int64", keep, [b * k]),
    ids_restore: new ort.Tensor("int64", restore, [b * n]),
    mask: new ort.Tensor("float32", mask, [b, n]),
  };
}

// --- Decoder fine-tuning -------------------------------------------------------------------------

export interface MaeFinetuneGraphOptions {
  /** Images per step (the graph's static batch size). */
  batch: number;
  /** HF names of the weights to train: `decoder.*` (spec §6), or any with `trainEncoder`. */
  trainable: readonly string[];
  /** Let encoder weights train too (unmasked autoencoder training, MAE-r style from the start). */
  trainEncoder?: boolean;
}

/** Name of the fine-tuning graph's batch input: images in [0,1], `[B, C, S, S]`. */
export const MAE_FINETUNE_INPUT = "pixels01";

/**
 * Spec §6 decoder fine-tuning graph: frozen encoder (initializers) without masking, trainable
 * decoder, loss `mean |denorm(recon) − pixels01|` (`decoderFinetuneLoss` without the perceptual term).
 */
export function buildMaeFinetuneGraph(mae: ViTMAE, opts: MaeFinetuneGraphOptions): OnnxGraph {
  const where = "buildMaeFinetuneGraph";
  checkBatch(where, opts.batch);
  checkTrainable(where, mae, opts.trainable, (name) => opts.trainEncoder === true || name.startsWith("decoder."), "the encoder is frozen in decoder fine-tuning (trainEncoder: false)");
  const c = mae.config;
  const { image_size: s, num_channels: ch, patch_size: p, hidden_size: d } = c;
  const b = opts.batch;

  const g = new OnnxGraph("vit_mae_finetune", { trainable: opts.trainable });
  const P = new MaeParams(g, mae);
  const pixels01 = g.input(MAE_FINETUNE_INPUT, "float32", [b, ch, s, s]);
  const mean = channelConst(g, IMAGENET_MEAN, ch);
  const std = channelConst(g, IMAGENET_STD, ch);

  // Encoder: normalised pixels, all patches in order, CLS kept.
  const pixels = g.op("Div", [g.op("Sub", [pixels01, mean]), std]); // [B, C, S, S]
  const features = encoder(P, prependCls(P, embedPatches(P, pixels, mae, b), b, d), mae); // [B, 1+N, D]

  // Decoder and the L1 loss in [0,1] space.
  const pred = decoderBlocks(P, P.linear(features, "decoder.decoder_embed"), mae); // [B, N, P]
  const recon = unpatchify(g, pred, b, ch, s, p); // [B, C, S, S] normalised
  const recon01 = g.op("Add", [g.op("Mul", [recon, std]), mean]);
  const loss = g.op("ReduceMean", [g.op("Abs", [g.op("Sub", [recon01, pixels01])])], { keepdims: 0 }); // []
  finishTrainingGraph(g, loss);
  return g;
}

// --- The gradient engine of `trainMae` -----------------------------------------------------------

/** `normalizeImageNet` of the batch on the host, `[count, 3, S, S]` flat, rounded to float32 as tfjs computes it. */
function batchNormalised(b: MaeBatch): Float32Array {
  const hw = b.size * b.size;
  const out = new Float32Array(b.pixels01.length);
  for (let i = 0; i < b.count; i++) {
    for (let c = 0; c < 3; c++) {
      const mean = Math.fround(IMAGENET_MEAN[c]);
      const std = Math.fround(IMAGENET_STD[c]);
      const off = (i * 3 + c) * hw;
      for (let k = off; k < off + hw; k++) out[k] = Math.fround(b.pixels01[k] - mean) / std;
    }
  }
  return out;
}

export interface OrtMaeGradientOptions extends MaeEngineRun {
  /** ONNX Runtime intra-op threads (default: the number of cores). */
  threads?: number;
}

/**
 * `trainMae`'s gradients on ONNX Runtime (its `gradients` option): the pre-training graph
 * (normalised pixels and masking from `batch.noise`, as `maePretrainTask`) or the spec §6 /
 * autoencoder graph (pixels in [0,1], as `maeDecoderFinetuneTask` / `maeAutoencodeTask`), built
 * once for `batchSize` and fed the current values of `variables` (the task's, by HF name, HF
 * layout) every call. `release` frees the session.
 */
export async function ortMaeGradients(mae: ViTMAE, variables: Record<string, tf.Variable>, opts: OrtMaeGradientOptions): Promise<MaeGradients> {
  const trainable = Object.keys(variables);
  const b = opts.batchSize;
  const n = mae.numPatches;
  const graph =
    opts.stage === "pretrain"
      ? buildMaePretrainGraph(mae, { batch: b, maskRatio: opts.maskRatio, normPixLoss: opts.normPixLoss, trainable })
      : buildMaeFinetuneGraph(mae, { batch: b, trainable, trainEncoder: opts.stage === "autoencode" });
  const session = await OrtTrainingSession.create(graph, { intraOpThreads: opts.threads });
  const gradients = async (batch: MaeBatch) => {
    if (batch.count !== b) throw new Error(`ORT MAE engine: a micro-batch of ${batch.count} images, the training graph was built for ${b}`);
    const shape = [b, 3, batch.size, batch.size];
    let feeds: Record<string, ort.Tensor>;
    if (opts.stage === "pretrain") {
      if (!batch.noise || batch.noise.length !== b * n) throw new Error(`ORT MAE engine: pre-training needs [${b}, ${n}] masking noise in the batch`);
      feeds = { pixel_values: new ort.Tensor("float32", batchNormalised(batch), shape), ...maeMaskingFeeds(batch.noise, b, n, opts.maskRatio) };
    } else {
      feeds = { [MAE_FINETUNE_INPUT]: new ort.Tensor("float32", batch.pixels01, shape) };
    }
    const params = Object.fromEntries(session.params.map((name) => [name, { data: variables[name].dataSync() as Float32Array, shape: variables[name].shape }]));
    return session.run(params, feeds);
  };
  return { name: "onnxruntime", gradients, release: () => session.release() };
}
