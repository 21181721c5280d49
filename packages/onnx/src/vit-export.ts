/**
 * ViTMAE → ONNX, the two LM4LV uses (spec §1):
 *
 *   encoder: pixel_values [B, 3, S, S] (normalised) → features [B, 1+N, D]
 *            no masking, identity patch order, CLS kept, final LayerNorm
 *   decoder: features [B, 1+N, D] → pixels [B, 3, S, S] (normalised space)
 *            decoder_embed, + decoder_pos_embed as stored, blocks, decoder_norm,
 *            decoder_pred, drop CLS, unpatchify
 *
 * Weights come from a loaded `ViTMAE` (`weights` by HF name, 2-D linears stored `[in, out]`).
 */
import * as tf from "@tensorflow/tfjs";
import type { ViTMAE } from "@lm4lv/mae";
import { OnnxGraph } from "./graph.js";
import { activation, dim, layerNorm, linear, linearInit, mergeHeads, splitHeads } from "./layers.js";
import type { LinearInit } from "./layers.js";

function data(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

function weight(model: ViTMAE, name: string): tf.Tensor {
  const t = model.weights.get(name);
  if (!t) throw new Error(`ViTMAE export: the model has no parameter "${name}"`);
  return t;
}

/** `[in, out]` kernel of a stored 2-D linear weight. */
function kernelOf(model: ViTMAE, name: string): { data: Float32Array; inDim: number; outDim: number } {
  const t = weight(model, name);
  if (t.rank !== 2) throw new Error(`ViTMAE export: "${name}" has shape [${t.shape}], expected a 2-D linear weight`);
  const [inDim, outDim] = t.shape as [number, number];
  return { data: data(t), inDim, outDim };
}

function linearFrom(g: OnnxGraph, model: ViTMAE, prefix: string): LinearInit {
  const k = kernelOf(model, `${prefix}.weight`);
  const b = model.weights.get(`${prefix}.bias`);
  return linearInit(g, prefix, k.data, k.inDim, k.outDim, b ? data(b) : undefined);
}

/**
 * Fused query/key/value projection: one `[D, 3D]` matmul instead of three `[D, D]`, then a split.
 * Missing biases (qkv_bias false) count as zeros.
 */
function qkvFrom(g: OnnxGraph, model: ViTMAE, prefix: string, d: number): LinearInit {
  const parts = ["query", "key", "value"].map((n) => kernelOf(model, `${prefix}.attention.attention.${n}.weight`));
  const kernel = new Float32Array(d * 3 * d);
  for (let i = 0; i < d; i++) {
    for (let p = 0; p < 3; p++) kernel.set(parts[p].data.subarray(i * d, (i + 1) * d), i * 3 * d + p * d);
  }
  const bias = new Float32Array(3 * d);
  ["query", "key", "value"].forEach((n, p) => {
    const b = model.weights.get(`${prefix}.attention.attention.${n}.bias`);
    if (b) bias.set(data(b), p * d);
  });
  return linearInit(g, `${prefix}.attention.attention.qkv`, kernel, d, 3 * d, bias);
}

function normInit(g: OnnxGraph, model: ViTMAE, prefix: string): { w: string; b: string } {
  return {
    w: g.initializer(`${prefix}.weight`, data(weight(model, `${prefix}.weight`)), [weight(model, `${prefix}.weight`).size]),
    b: g.initializer(`${prefix}.bias`, data(weight(model, `${prefix}.bias`)), [weight(model, `${prefix}.bias`).size]),
  };
}

/** Pre-LN ViT block (HF ViTMAELayer): x + attn(LN(x)); h + MLP(LN(h)). `[B, T, D]` → `[B, T, D]`. */
function vitBlock(g: OnnxGraph, model: ViTMAE, x: string, prefix: string, d: number, heads: number): string {
  const eps = model.config.layer_norm_eps;
  const hd = d / heads;
  const ln1 = normInit(g, model, `${prefix}.layernorm_before`);
  const normed = layerNorm(g, x, ln1.w, ln1.b, eps); // [B, T, D]
  const qkv = linear(g, normed, qkvFrom(g, model, prefix, d)); // [B, T, 3D]
  const [q, k, v] = g.node("Split", [qkv, g.i64([d, d, d])], { axis: -1 }, 3); // 3 × [B, T, D]
  const qh = g.op("Mul", [splitHeads(g, q, heads, hd), g.f32([1 / Math.sqrt(hd)])]); // [B, H, T, hd] scaled
  const kt = g.op("Transpose", [g.op("Reshape", [k, g.i64([0, 0, heads, hd])])], { perm: [0, 2, 3, 1] }); // [B, H, hd, T]
  const vh = splitHeads(g, v, heads, hd); // [B, H, T, hd]
  const probs = g.op("Softmax", [g.op("MatMul", [qh, kt])], { axis: -1 }); // [B, H, T, T]
  const ctx = mergeHeads(g, g.op("MatMul", [probs, vh]), heads, hd); // [B, T, D]
  const h = g.op("Add", [x, linear(g, ctx, linearFrom(g, model, `${prefix}.attention.output.dense`))]); // [B, T, D]
  const ln2 = normInit(g, model, `${prefix}.layernorm_after`);
  const up = activation(g, linear(g, layerNorm(g, h, ln2.w, ln2.b, eps), linearFrom(g, model, `${prefix}.intermediate.dense`)), model.config.hidden_act); // [B, T, mlp]
  return g.op("Add", [h, linear(g, up, linearFrom(g, model, `${prefix}.output.dense`))]); // [B, T, D]
}

/** pixel_values [B, 3, S, S] → features [B, 1+N, D]. */
export function buildViTEncoder(model: ViTMAE): OnnxGraph {
  const c = model.config;
  const { hidden_size: d, patch_size: p, image_size: s, num_channels: ch } = c;
  const n = model.numPatches;
  const g = new OnnxGraph("vit_mae_encoder");
  const pixels = g.input("pixel_values", "float32", ["batch", ch, s, s]);

  // Patch embedding: the conv with stride p, as HF. [B, C, S, S] → [B, D, gh, gw] → [B, N, D]
  const convW = g.initializer("vit.embeddings.patch_embeddings.projection.weight", data(weight(model, "vit.embeddings.patch_embeddings.projection.weight")), [d, ch, p, p]);
  const convB = g.initializer("vit.embeddings.patch_embeddings.projection.bias", data(weight(model, "vit.embeddings.patch_embeddings.projection.bias")), [d]);
  const conv = g.op("Conv", [pixels, convW, convB], { kernel_shape: [p, p], strides: [p, p] }); // [B, D, gh, gw]
  const patches = g.op("Transpose", [g.op("Reshape", [conv, g.i64([0, d, n])])], { perm: [0, 2, 1] }); // [B, N, D]
  const posAll = data(weight(model, "vit.embeddings.position_embeddings")); // [1, 1+N, D]
  const posPatches = g.initializer("vit.embeddings.position_embeddings.patches", posAll.slice(d), [1, n, d]);
  const x = g.op("Add", [patches, posPatches]); // [B, N, D]

  // CLS token + its position embedding, one per batch row, in front.
  const clsRow = data(weight(model, "vit.embeddings.cls_token")).map((v, i) => v + posAll[i]);
  const cls = g.initializer("vit.embeddings.cls_token.with_position", clsRow, [1, 1, d]);
  const clsShape = g.op("Concat", [dim(g, pixels, 0), g.i64([1, d])], { axis: 0 }); // [B, 1, D]
  let h = g.op("Concat", [g.op("Expand", [cls, clsShape]), x], { axis: 1 }); // [B, 1+N, D]

  for (let i = 0; i < c.num_hidden_layers; i++) h = vitBlock(g, model, h, `vit.encoder.layer.${i}`, d, c.num_attention_heads);
  const ln = normInit(g, model, "vit.layernorm");
  g.output(layerNorm(g, h, ln.w, ln.b, c.layer_norm_eps), "float32", ["batch", 1 + n, d], "features");
  return g;
}

/** features [B, 1+N, D] → pixels [B, 3, S, S] (normalised space). */
export function buildViTDecoder(model: ViTMAE): OnnxGraph {
  const c = model.config;
  const { hidden_size: d, patch_size: p, image_size: s, num_channels: ch, decoder_hidden_size: dd } = c;
  const n = model.numPatches;
  const gside = s / p;
  const g = new OnnxGraph("vit_mae_decoder");
  const features = g.input("features", "float32", ["batch", 1 + n, d]);

  const x = linear(g, features, linearFrom(g, model, "decoder.decoder_embed")); // [B, 1+N, Dd]
  const pos = g.initializer("decoder.decoder_pos_embed", data(weight(model, "decoder.decoder_pos_embed")), [1, 1 + n, dd]);
  let h = g.op("Add", [x, pos]); // [B, 1+N, Dd]
  for (let i = 0; i < c.decoder_num_hidden_layers; i++) h = vitBlock(g, model, h, `decoder.decoder_layers.${i}`, dd, c.decoder_num_attention_heads);
  const ln = normInit(g, model, "decoder.decoder_norm");
  h = layerNorm(g, h, ln.w, ln.b, c.layer_norm_eps);
  const pred = linear(g, h, linearFrom(g, model, "decoder.decoder_pred")); // [B, 1+N, p·p·C]
  const noCls = g.op("Slice", [pred, g.i64([1]), g.i64([1 + n]), g.i64([1])]); // [B, N, p·p·C]

  // unpatchify: [B, N, p·q·C] → [B, gh, gw, p, q, C] → [B, C, gh, p, gw, q] → [B, C, S, S]
  const grid = g.op("Reshape", [noCls, g.i64([0, gside, gside, p, p, ch])]);
  const chw = g.op("Transpose", [grid], { perm: [0, 5, 1, 3, 2, 4] });
  g.output(g.op("Reshape", [chw, g.i64([0, ch, s, s])]), "float32", ["batch", ch, s, s], "pixels");
  return g;
}
