/**
 * ViTMAE → ONNX, the two LM4LV uses (spec §1):
 *
 *   encoder: pixel_values [B, 3, S, S] (normalised) → features [B, 1+N, D]
 *            no masking, identity patch order, CLS kept, final LayerNorm
 *   decoder: features [B, 1+N, D] → pixels [B, 3, S, S] (normalised space)
 *            decoder_embed, + decoder_pos_embed as stored, blocks, decoder_norm,
 *            decoder_pred, drop CLS, unpatchify
 *
 * Weights come from a loaded `ViTMAE`, read one at a time (`readParameter`: HF names, HF layout);
 * Linear weights `[out, in]` become MatMul kernels `[in, out]`.
 */
import { transpose2d } from "@lm4lv/core";
import { expectedWeights } from "@lm4lv/mae";
import type { ViTMAE } from "@lm4lv/mae";
import { OnnxGraph } from "./graph.js";
import { activation, dim, layerNorm, linear, linearInit, mergeHeads, splitHeads } from "./layers.js";
import type { LinearInit } from "./layers.js";

/** The model's parameters (HF names, HF layout), each read when a graph needs it. */
class Params {
  private readonly names: Set<string>;
  constructor(private readonly model: ViTMAE) {
    this.names = new Set(expectedWeights(model.config).map((s) => s.name));
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  get(name: string): { shape: number[]; data: Float32Array } {
    if (!this.names.has(name)) throw new Error(`ViTMAE export: the model has no parameter "${name}"`);
    return this.model.readParameter(name);
  }

  /** `[in, out]` kernel of a Linear weight (HF `[out, in]`). */
  kernel(name: string): { data: Float32Array; inDim: number; outDim: number } {
    const t = this.get(name);
    if (t.shape.length !== 2) throw new Error(`ViTMAE export: "${name}" has shape [${t.shape}], expected a 2-D linear weight`);
    const [outDim, inDim] = t.shape as [number, number];
    return { data: transpose2d(t.data, outDim, inDim), inDim, outDim };
  }
}

function linearFrom(g: OnnxGraph, P: Params, prefix: string): LinearInit {
  const k = P.kernel(`${prefix}.weight`);
  const b = P.has(`${prefix}.bias`) ? P.get(`${prefix}.bias`).data : undefined;
  return linearInit(g, prefix, k.data, k.inDim, k.outDim, b);
}

/**
 * Fused query/key/value projection: one `[D, 3D]` matmul instead of three `[D, D]`, then a split.
 * Missing biases (qkv_bias false) count as zeros.
 */
function qkvFrom(g: OnnxGraph, P: Params, prefix: string, d: number): LinearInit {
  const parts = ["query", "key", "value"].map((n) => P.kernel(`${prefix}.attention.attention.${n}.weight`));
  const kernel = new Float32Array(d * 3 * d);
  for (let i = 0; i < d; i++) {
    for (let p = 0; p < 3; p++) kernel.set(parts[p].data.subarray(i * d, (i + 1) * d), i * 3 * d + p * d);
  }
  const bias = new Float32Array(3 * d);
  ["query", "key", "value"].forEach((n, p) => {
    const name = `${prefix}.attention.attention.${n}.bias`;
    if (P.has(name)) bias.set(P.get(name).data, p * d);
  });
  return linearInit(g, `${prefix}.attention.attention.qkv`, kernel, d, 3 * d, bias);
}

function normInit(g: OnnxGraph, P: Params, prefix: string): { w: string; b: string } {
  const [w, b] = [P.get(`${prefix}.weight`).data, P.get(`${prefix}.bias`).data];
  return { w: g.initializer(`${prefix}.weight`, w, [w.length]), b: g.initializer(`${prefix}.bias`, b, [b.length]) };
}

/** Pre-LN ViT block (HF ViTMAELayer): x + attn(LN(x)); h + MLP(LN(h)). `[B, T, D]` → `[B, T, D]`. */
function vitBlock(g: OnnxGraph, model: ViTMAE, P: Params, x: string, prefix: string, d: number, heads: number): string {
  const eps = model.config.layer_norm_eps;
  const hd = d / heads;
  const ln1 = normInit(g, P, `${prefix}.layernorm_before`);
  const normed = layerNorm(g, x, ln1.w, ln1.b, eps); // [B, T, D]
  const qkv = linear(g, normed, qkvFrom(g, P, prefix, d)); // [B, T, 3D]
  const [q, k, v] = g.node("Split", [qkv, g.i64([d, d, d])], { axis: -1 }, 3); // 3 × [B, T, D]
  const qh = g.op("Mul", [splitHeads(g, q, heads, hd), g.f32([1 / Math.sqrt(hd)])]); // [B, H, T, hd] scaled
  const kt = g.op("Transpose", [g.op("Reshape", [k, g.i64([0, 0, heads, hd])])], { perm: [0, 2, 3, 1] }); // [B, H, hd, T]
  const vh = splitHeads(g, v, heads, hd); // [B, H, T, hd]
  const probs = g.op("Softmax", [g.op("MatMul", [qh, kt])], { axis: -1 }); // [B, H, T, T]
  const ctx = mergeHeads(g, g.op("MatMul", [probs, vh]), heads, hd); // [B, T, D]
  const h = g.op("Add", [x, linear(g, ctx, linearFrom(g, P, `${prefix}.attention.output.dense`))]); // [B, T, D]
  const ln2 = normInit(g, P, `${prefix}.layernorm_after`);
  const up = activation(g, linear(g, layerNorm(g, h, ln2.w, ln2.b, eps), linearFrom(g, P, `${prefix}.intermediate.dense`)), model.config.hidden_act); // [B, T, mlp]
  return g.op("Add", [h, linear(g, up, linearFrom(g, P, `${prefix}.output.dense`))]); // [B, T, D]
}

/** pixel_values [B, 3, S, S] → features [B, 1+N, D]. */
export function buildViTEncoder(model: ViTMAE): OnnxGraph {
  const c = model.config;
  const { hidden_size: d, patch_size: p, image_size: s, num_channels: ch } = c;
  const n = model.numPatches;
  const P = new Params(model);
  const g = new OnnxGraph("vit_mae_encoder");
  const pixels = g.input("pixel_values", "float32", ["batch", ch, s, s]);

  // Patch embedding: the conv with stride p, as HF. [B, C, S, S] → [B, D, gh, gw] → [B, N, D]
  const convW = g.initializer("vit.embeddings.patch_embeddings.projection.weight", P.get("vit.embeddings.patch_embeddings.projection.weight").data, [d, ch, p, p]);
  const convB = g.initializer("vit.embeddings.patch_embeddings.projection.bias", P.get("vit.embeddings.patch_embeddings.projection.bias").data, [d]);
  const conv = g.op("Conv", [pixels, convW, convB], { kernel_shape: [p, p], strides: [p, p] }); // [B, D, gh, gw]
  const patches = g.op("Transpose", [g.op("Reshape", [conv, g.i64([0, d, n])])], { perm: [0, 2, 1] }); // [B, N, D]
  const posAll = P.get("vit.embeddings.position_embeddings").data; // [1, 1+N, D]
  const posPatches = g.initializer("vit.embeddings.position_embeddings.patches", posAll.slice(d), [1, n, d]);
  const x = g.op("Add", [patches, posPatches]); // [B, N, D]

  // CLS token + its position embedding, one per batch row, in front.
  const clsRow = P.get("vit.embeddings.cls_token").data.map((v, i) => v + posAll[i]);
  const cls = g.initializer("vit.embeddings.cls_token.with_position", clsRow, [1, 1, d]);
  const clsShape = g.op("Concat", [dim(g, pixels, 0), g.i64([1, d])], { axis: 0 }); // [B, 1, D]
  let h = g.op("Concat", [g.op("Expand", [cls, clsShape]), x], { axis: 1 }); // [B, 1+N, D]

  for (let i = 0; i < c.num_hidden_layers; i++) h = vitBlock(g, model, P, h, `vit.encoder.layer.${i}`, d, c.num_attention_heads);
  const ln = normInit(g, P, "vit.layernorm");
  g.output(layerNorm(g, h, ln.w, ln.b, c.layer_norm_eps), "float32", ["batch", 1 + n, d], "features");
  return g;
}

/** features [B, 1+N, D] → pixels [B, 3, S, S] (normalised space). */
export function buildViTDecoder(model: ViTMAE): OnnxGraph {
  const c = model.config;
  const { hidden_size: d, patch_size: p, image_size: s, num_channels: ch, decoder_hidden_size: dd } = c;
  const n = model.numPatches;
  const gside = s / p;
  const P = new Params(model);
  const g = new OnnxGraph("vit_mae_decoder");
  const features = g.input("features", "float32", ["batch", 1 + n, d]);

  const x = linear(g, features, linearFrom(g, P, "decoder.decoder_embed")); // [B, 1+N, Dd]
  const pos = g.initializer("decoder.decoder_pos_embed", P.get("decoder.decoder_pos_embed").data, [1, 1 + n, dd]);
  let h = g.op("Add", [x, pos]); // [B, 1+N, Dd]
  for (let i = 0; i < c.decoder_num_hidden_layers; i++) h = vitBlock(g, model, P, h, `decoder.decoder_layers.${i}`, dd, c.decoder_num_attention_heads);
  const ln = normInit(g, P, "decoder.decoder_norm");
  h = layerNorm(g, h, ln.w, ln.b, c.layer_norm_eps);
  const pred = linear(g, h, linearFrom(g, P, "decoder.decoder_pred")); // [B, 1+N, p·p·C]
  const noCls = g.op("Slice", [pred, g.i64([1]), g.i64([1 + n]), g.i64([1])]); // [B, N, p·p·C]

  // unpatchify: [B, N, p·q·C] → [B, gh, gw, p, q, C] → [B, C, gh, p, gw, q] → [B, C, S, S]
  const grid = g.op("Reshape", [noCls, g.i64([0, gside, gside, p, p, ch])]);
  const chw = g.op("Transpose", [grid], { perm: [0, 5, 1, 3, 2, 4] });
  g.output(g.op("Reshape", [chw, g.i64([0, ch, s, s])]), "float32", ["batch", ch, s, s], "pixels");
  return g;
}
