/**
 * Llama (HF `LlamaForCausalLM`) → ONNX step graphs with a KV cache, plus the folded LM4LV
 * visual step. Notation: B batch, T new positions, P past positions, S = P + T,
 * C hidden, nh query heads, kv key/value heads, hs head width, L = num_logits.
 *
 * Step graph (prefill and single-token decode; P may be 0):
 *   inputs_embeds [B, T, C], attention_mask [B, S] int64, position_ids [B, T] int64,
 *   num_logits [1] int64 (0 ≤ L ≤ T: logits for the last L positions only),
 *   past_key_i / past_value_i [B, kv, P, hs]
 *   → last_hidden_state [B, T, C] (after the final norm), logits [B, L, vocab],
 *     present_key_i / present_value_i [B, kv, S, hs] (K after RoPE, as @lm4lv/llm's cache)
 *
 * Step graph with the LM4LV adapters folded in (`buildVisualStep`): the same graph, so one
 * session (one copy of the LM weights) serves prefill, decode and the visual loop, plus
 *   features [B, T2, Dv] (previous visual features; T2 = 0 for text) → the LM reads
 *   concat(inputs_embeds [B, T1, C], adapt(features)) along T (T = T1 + T2), and
 *   next_feature [B, 1, Dv] = deAdapt(final-norm hidden state of the last position).
 *   The visual loop runs it with num_logits 0 (no vocabulary projection), one call per token.
 *
 * RoPE is computed in the graph from position_ids and inv_freq (an initializer).
 *
 * Weights come from a `LlamaWeightSource` (a loaded model or safetensors read lazily) and are
 * read when the graph is written. `weights` picks how the linear layers are stored
 * (fp32 | fp16 | int8 | int4, see WeightFormat); norms stay float32. With a quantized format the
 * LM head is int8 for int8 and int4 (fp16 for fp16) and the embedding table is float16.
 */
import * as tf from "@tensorflow/tfjs";
import type { LlamaForCausalLM } from "@lm4lv/llm";
import { MASK_VALUE } from "@lm4lv/llm";
import { f32ToF16 } from "@lm4lv/core";
import { OnnxGraph } from "./graph.js";
import { dim, linear, linearInit, mergeHeads, rmsNorm, splitHeads, weightLinear } from "./layers.js";
import type { LinearInit, WeightFormat } from "./layers.js";
import { asWeightSource } from "./llama-source.js";
import type { LlamaWeightSource } from "./llama-source.js";

/** How an exported LM stores its weights. */
export interface LlamaExportOptions {
  /** Linear layers of the decoder (default fp32). */
  weights?: WeightFormat;
  /** MatMulNBits accuracy_level for int8 / int4 (default 4: int8 activations inside the kernel). */
  accuracyLevel?: number;
  /** int4 weights per scale and zero point along K (default 32; int4 decoder layers only: the head stays int8). */
  int4BlockSize?: number;
}

/** The LM head's format for a decoder format: int4 keeps an int8 head. */
export function headFormat(format: WeightFormat): WeightFormat {
  return format === "int4" ? "int8" : format;
}

/** Adapter weights in PyTorch layout (`[out, in]`), e.g. from `LM4LVAdapters`. */
export interface AdapterWeights {
  adapterWeight: tf.Tensor2D; // [Dl, Dv]
  adapterBias: tf.Tensor1D; // [Dl]
  deAdapterWeight: tf.Tensor2D; // [Dv, Dl]
  deAdapterBias: tf.Tensor1D; // [Dv]
}

function data(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

/** x → x · Wᵀ (+ b) for the HF linear `name` (weight `[outDim, inDim]`) read from `src`. */
function hfLinear(g: OnnxGraph, x: string, src: LlamaWeightSource, name: string, inDim: number, outDim: number, bias: boolean, opts: LlamaExportOptions, format = opts.weights ?? "fp32"): string {
  const weight = `${name}.weight`;
  return weightLinear(g, x, {
    name,
    inDim,
    outDim,
    weight: () => src.tensor(weight),
    kernel: () => src.kernel(weight),
    bias: bias ? () => src.tensor(`${name}.bias`) : undefined,
  }, format, opts);
}

/** A PyTorch-layout `[out, in]` weight as an `[in, out]` kernel initializer. */
function torchLinear(g: OnnxGraph, name: string, weight: tf.Tensor2D, bias: tf.Tensor1D): LinearInit {
  const [outDim, inDim] = weight.shape;
  const kernel = tf.tidy(() => tf.transpose(weight));
  const init = linearInit(g, name, data(kernel), inDim, outDim, data(bias));
  kernel.dispose();
  return init;
}

export const pastKeyName = (l: number) => `past_key_${l}`;
export const pastValueName = (l: number) => `past_value_${l}`;
export const presentKeyName = (l: number) => `present_key_${l}`;
export const presentValueName = (l: number) => `present_value_${l}`;

/** What the decoder stack reads besides `x`: the attention bias, RoPE tables and (optionally) a KV cache. */
export interface DecoderContext {
  /** Additive attention bias `[B or 1, 1, T, S]` (0 where query t may see key s, else MASK_VALUE). */
  bias: string;
  /** RoPE tables `[B or 1, 1, T, hs]`. */
  cos: string;
  sin: string;
  /** Per layer: past keys/values to prepend (`[B, kv, P, hs]`), or none for a cache-free pass. */
  past?: (layer: number) => { key: string; value: string } | undefined;
  /** Per layer: the full keys/values after this step (e.g. to declare present outputs). */
  present?: (layer: number, keys: string, values: string) => void;
  /** Per layer: the attention probabilities `[B, nh, T, S]` (e.g. to declare them as outputs). */
  attention?: (layer: number, probs: string) => void;
}

/**
 * The decoder stack on `x` [B, T, C] → final-norm hidden state [B, T, C]. fp32 weights go
 * through `g.param` (so a training graph may declare them trainable), read when written.
 */
export function llamaDecoder(g: OnnxGraph, lm: LlamaForCausalLM | LlamaWeightSource, x: string, ctx: DecoderContext, opts: LlamaExportOptions = {}): string {
  const src = asWeightSource(lm);
  const c = src.config;
  const { hidden_size: C, intermediate_size: I } = c;
  const attnBias = c.attention_bias;
  const mlpBias = c.mlp_bias;
  const { num_attention_heads: nh, num_key_value_heads: kv, head_dim: hs } = c;
  const { cos, sin, bias } = ctx;
  const half = g.i64([hs / 2, hs / 2]);
  const rope = (v: string) => {
    const [a, b] = g.node("Split", [v, half], { axis: -1 }, 2); // [.., hs/2] each
    const rotated = g.op("Concat", [g.op("Neg", [b]), a], { axis: -1 }); // [−x2, x1]
    return g.op("Add", [g.op("Mul", [v, cos]), g.op("Mul", [rotated, sin])]);
  };

  const eps = c.rms_norm_eps;
  let h = x; // [B, T, C]
  const norm = (name: string) => g.param(name, () => src.tensor(name), [C]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const proj = (x: string, name: string, inDim: number, outDim: number, b: boolean) => hfLinear(g, x, src, `${p}.${name}`, inDim, outDim, b, opts);
    // attention
    const normed = rmsNorm(g, h, norm(`${p}.input_layernorm.weight`), eps);
    const q = rope(splitHeads(g, proj(normed, "self_attn.q_proj", C, nh * hs, attnBias), nh, hs)); // [B, nh, T, hs]
    const k = rope(splitHeads(g, proj(normed, "self_attn.k_proj", C, kv * hs, attnBias), kv, hs)); // [B, kv, T, hs]
    const v = splitHeads(g, proj(normed, "self_attn.v_proj", C, kv * hs, attnBias), kv, hs); // [B, kv, T, hs]
    const past = ctx.past?.(l);
    const keys = past ? g.op("Concat", [past.key, k], { axis: 2 }) : k; // [B, kv, S, hs]
    const values = past ? g.op("Concat", [past.value, v], { axis: 2 }) : v; // [B, kv, S, hs]
    ctx.present?.(l, keys, values);
    // Grouped-query attention: the nRep query heads of one key/value head stacked along the query axis.
    const qScaled = g.op("Mul", [q, g.f32([1 / Math.sqrt(hs)])]);
    const qGrouped = g.op("Reshape", [qScaled, g.i64([0, kv, -1, hs])]); // [B, kv, nRep·T, hs]
    const scores = g.op("MatMul", [qGrouped, g.op("Transpose", [keys], { perm: [0, 1, 3, 2] })]); // [B, kv, nRep·T, S]
    const biased = g.op("Add", [g.op("Reshape", [scores, g.i64([0, nh, -1, 0])]), bias]); // [B, nh, T, S]
    const softmax = g.op("Softmax", [biased], { axis: -1 }); // [B, nh, T, S]
    ctx.attention?.(l, softmax);
    const probs = g.op("Reshape", [softmax, g.i64([0, kv, -1, 0])]); // [B, kv, nRep·T, S]
    const ctxv = g.op("Reshape", [g.op("MatMul", [probs, values]), g.i64([0, nh, -1, hs])]); // [B, nh, T, hs]
    const attnOut = proj(mergeHeads(g, ctxv, nh, hs), "self_attn.o_proj", nh * hs, C, attnBias); // [B, T, C]
    h = g.op("Add", [h, attnOut]);

    // SwiGLU MLP: down(silu(gate(x)) · up(x))
    const normed2 = rmsNorm(g, h, norm(`${p}.post_attention_layernorm.weight`), eps);
    const gate = proj(normed2, "mlp.gate_proj", C, I, mlpBias); // [B, T, I]
    const up = proj(normed2, "mlp.up_proj", C, I, mlpBias); // [B, T, I]
    const act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up]);
    h = g.op("Add", [h, proj(act, "mlp.down_proj", I, C, mlpBias)]); // [B, T, C]
  }
  return rmsNorm(g, h, norm("model.norm.weight"), eps); // [B, T, C]
}

/**
 * The decoder stack on `x` [B, T, C] with a KV cache: declares mask/position/past inputs and
 * present outputs, returns the final-norm hidden state [B, T, C].
 */
function llamaCore(g: OnnxGraph, src: LlamaWeightSource, x: string, opts: LlamaExportOptions): string {
  const c = src.config;
  const { num_key_value_heads: kv, head_dim: hs } = c;
  const mask = g.input("attention_mask", "int64", ["batch", "total_sequence_length"]);
  const positions = g.input("position_ids", "int64", ["batch", "sequence_length"]);

  // Attention bias [B, 1, T, S]: 0 where query t (absolute position P + t) may see key s, else MASK_VALUE.
  const S = dim(g, mask, 1); // [1]
  const T = dim(g, x, 1); // [1]
  const P = g.op("Sub", [S, T]);
  const zero = g.i64([0], []);
  const one = g.i64([1], []);
  const scalar = (v: string) => g.op("Squeeze", [v, g.i64([0])]);
  const qPos = g.op("Unsqueeze", [g.op("Range", [scalar(P), scalar(S), one]), g.i64([1])]); // [T, 1]
  const kPos = g.op("Unsqueeze", [g.op("Range", [zero, scalar(S), one]), g.i64([0])]); // [1, S]
  const causal = g.op("LessOrEqual", [kPos, qPos]); // [T, S]
  const keep = g.op("Unsqueeze", [g.op("Cast", [mask], { to: 9 }), g.i64([1, 2])]); // [B, 1, 1, S] bool
  const allowed = g.op("And", [causal, keep]); // [B, 1, T, S]
  const bias = g.op("Where", [allowed, g.f32([0]), g.f32([MASK_VALUE])]); // [B, 1, T, S]

  // RoPE tables from positions: angle = position · inv_freq, duplicated over both halves.
  const invFreq = g.initializer("rotary_emb.inv_freq", Float32Array.from(src.invFreq), [1, 1, hs / 2]);
  const freqs = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [positions], { to: 1 }), g.i64([2])]), invFreq]); // [B, T, hs/2]
  const emb = g.op("Unsqueeze", [g.op("Concat", [freqs, freqs], { axis: -1 }), g.i64([1])]); // [B, 1, T, hs]
  return llamaDecoder(g, src, x, {
    bias,
    cos: g.op("Cos", [emb]),
    sin: g.op("Sin", [emb]),
    past: (l) => ({
      key: g.input(pastKeyName(l), "float32", ["batch", kv, "past_sequence_length", hs]),
      value: g.input(pastValueName(l), "float32", ["batch", kv, "past_sequence_length", hs]),
    }),
    present: (l, keys, values) => {
      g.output(keys, "float32", ["batch", kv, "total_sequence_length", hs], presentKeyName(l));
      g.output(values, "float32", ["batch", kv, "total_sequence_length", hs], presentValueName(l));
    },
  }, opts);
}

/** Name of the step graph input that says how many trailing positions get logits. */
export const NUM_LOGITS = "num_logits";

/**
 * The LM step graph (see the file comment); with `adapters`, the LM4LV step that also reads
 * visual features and writes the next one (one graph for the LM and the visual loop).
 */
export function buildLlamaStep(lm: LlamaForCausalLM | LlamaWeightSource, opts: LlamaExportOptions = {}, adapters?: AdapterWeights): OnnxGraph {
  const src = asWeightSource(lm);
  const c = src.config;
  const C = c.hidden_size;
  const g = new OnnxGraph(adapters ? "lm4lv_step" : "llama_step");
  const text = g.input("inputs_embeds", "float32", ["batch", adapters ? "text_length" : "sequence_length", C]);
  let x = text; // [B, T, C]
  let dv = 0;
  if (adapters) {
    dv = checkAdapters(adapters, C);
    const feats = g.input("features", "float32", ["batch", "feature_length", dv]);
    const adapted = linear(g, feats, torchLinear(g, "adapter", adapters.adapterWeight, adapters.adapterBias)); // [B, T2, C]
    x = g.op("Concat", [text, adapted], { axis: 1 }); // [B, T1+T2, C]
  }
  const numLogits = g.input(NUM_LOGITS, "int64", [1]);
  const hidden = llamaCore(g, src, x, opts); // [B, T, C]
  g.output(hidden, "float32", ["batch", "sequence_length", C], "last_hidden_state");
  // lm_head on the last L positions: its own weight, or the embedding table (the same [vocab, C] layout) when tied.
  const T = dim(g, hidden, 1); // [1]
  const tail = g.op("Slice", [hidden, g.op("Sub", [T, numLogits]), g.i64([2 ** 62]), g.i64([1])]); // [B, L, C]
  const headWeight = c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const logits = weightLinear(g, tail, {
    name: "lm_head",
    inDim: C,
    outDim: c.vocab_size,
    weight: () => src.tensor(headWeight),
    kernel: () => src.kernel(headWeight),
  }, headFormat(opts.weights ?? "fp32"), { accuracyLevel: opts.accuracyLevel });
  g.output(logits, "float32", ["batch", "num_logits", c.vocab_size], "logits");
  if (adapters) {
    const last = g.op("Slice", [hidden, g.i64([-1]), g.i64([2 ** 62]), g.i64([1])]); // [B, 1, C]
    const next = linear(g, last, torchLinear(g, "de_adapter", adapters.deAdapterWeight, adapters.deAdapterBias)); // [B, 1, Dv]
    g.output(next, "float32", ["batch", 1, dv], "next_feature");
  }
  return g;
}

/** Checks the adapters' shapes against the LM width; returns Dv. */
function checkAdapters(adapters: AdapterWeights, C: number): number {
  const [dl, dv] = adapters.adapterWeight.shape;
  if (dl !== C) throw new Error(`visual step export: adapter.weight has shape [${adapters.adapterWeight.shape}], expected [${C}, Dv] for this LM`);
  if (adapters.deAdapterWeight.shape[0] !== dv || adapters.deAdapterWeight.shape[1] !== dl) {
    throw new Error(`visual step export: de_adapter.weight has shape [${adapters.deAdapterWeight.shape}], expected [${dv}, ${dl}]`);
  }
  return dv;
}

/**
 * input_ids [B, T] int64 → inputs_embeds [B, T, C] through the embedding table (float32, or
 * float16 + Cast when `weights` is not fp32: the gather reads half the bytes).
 */
export function buildEmbed(lm: LlamaForCausalLM | LlamaWeightSource, opts: LlamaExportOptions = {}): OnnxGraph {
  const src = asWeightSource(lm);
  const c = src.config;
  const g = new OnnxGraph("llama_embed");
  const ids = g.input("input_ids", "int64", ["batch", "sequence_length"]);
  const name = "model.embed_tokens.weight";
  const dims = [c.vocab_size, c.hidden_size];
  let embeds: string;
  if ((opts.weights ?? "fp32") === "fp32") {
    embeds = g.op("Gather", [g.lazyInitializer(name, "float32", dims, () => src.tensor(name)), ids], { axis: 0 });
  } else {
    const table = g.lazyInitializer(`${name}_fp16`, "float16", dims, () => f32ToF16(src.tensor(name)));
    embeds = g.op("Cast", [g.op("Gather", [table, ids], { axis: 0 })], { to: 1 });
  }
  g.output(embeds, "float32", ["batch", "sequence_length", c.hidden_size], "inputs_embeds");
  return g;
}

/**
 * The folded LM4LV step graph (see the file comment): the LM step graph with the adapters
 * (kept float32) around it, serving the LM and the visual loop from one set of weights.
 */
export function buildVisualStep(lm: LlamaForCausalLM | LlamaWeightSource, adapters: AdapterWeights, opts: LlamaExportOptions = {}): OnnxGraph {
  return buildLlamaStep(lm, opts, adapters);
}
