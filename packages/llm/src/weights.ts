/**
 * Llama weights: the table of expected HF names and shapes, checked loading from
 * safetensors, random init and saving.
 *
 * HF stores a Linear weight as (out, in). We keep linear weights transposed as a
 * `kernel` (in, out), so `x @ kernel` needs no transpose at run time; these are the
 * tensors of role "linear" in the table. Embedding, norm and bias tensors keep the HF layout.
 * When `tie_word_embeddings` is set the output projection reuses `model.embed_tokens.weight`.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32, SafetensorsCheckpoint, SafetensorsError, WeightLoadError, writeSafetensors } from "@lm4lv/core";
import type { SafetensorsDtype, TensorToWrite } from "@lm4lv/core";
import type { LlamaConfig } from "./config.js";

export interface Linear {
  kernel: tf.Tensor2D; // (in, out) = HF weight transposed
  bias?: tf.Tensor1D; // (out)
}

export interface LlamaLayerWeights {
  inputNorm: tf.Tensor1D; // (C)
  q: Linear; // C → nh·hs
  k: Linear; // C → kv·hs
  v: Linear; // C → kv·hs
  o: Linear; // nh·hs → C
  postAttentionNorm: tf.Tensor1D; // (C)
  gate: Linear; // C → I
  up: Linear; // C → I
  down: Linear; // I → C
}

export interface LlamaWeights {
  embedTokens: tf.Tensor2D; // (vocab, C)
  layers: LlamaLayerWeights[];
  norm: tf.Tensor1D; // (C)
  /** Undefined when tied: logits use embedTokens transposed. */
  lmHead?: Linear; // C → vocab
}

export type WeightRole = "embedding" | "linear" | "bias" | "norm";

export interface WeightSpec {
  /** HF state-dict name. */
  name: string;
  /** Shape as stored by HF. */
  shape: number[];
  role: WeightRole;
}

/** Checkpoint keys that are not weights and are skipped when present (old exports). */
export const IGNORED_KEYS: RegExp[] = [/\.rotary_emb\.inv_freq$/];

/** Every tensor a checkpoint for `config` must hold, in HF order. */
export function llamaWeightTable(config: LlamaConfig): WeightSpec[] {
  const C = config.hidden_size;
  const I = config.intermediate_size;
  const q = config.num_attention_heads * config.head_dim;
  const kv = config.num_key_value_heads * config.head_dim;
  const specs: WeightSpec[] = [{ name: "model.embed_tokens.weight", shape: [config.vocab_size, C], role: "embedding" }];
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, shape: [out, inp], role: "linear" });
    if (bias) specs.push({ name: `${name}.bias`, shape: [out], role: "bias" });
  };
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [C], role: "norm" });
    linear(`${p}.self_attn.q_proj`, q, C, config.attention_bias);
    linear(`${p}.self_attn.k_proj`, kv, C, config.attention_bias);
    linear(`${p}.self_attn.v_proj`, kv, C, config.attention_bias);
    linear(`${p}.self_attn.o_proj`, C, q, config.attention_bias);
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [C], role: "norm" });
    linear(`${p}.mlp.gate_proj`, I, C, config.mlp_bias);
    linear(`${p}.mlp.up_proj`, I, C, config.mlp_bias);
    linear(`${p}.mlp.down_proj`, C, I, config.mlp_bias);
  }
  specs.push({ name: "model.norm.weight", shape: [C], role: "norm" });
  if (!config.tie_word_embeddings) specs.push({ name: "lm_head.weight", shape: [config.vocab_size, C], role: "linear" });
  return specs;
}

/** Builds the structured weights from tensors keyed by HF name (linear weights already as kernels). */
export function assembleWeights(config: LlamaConfig, t: Map<string, tf.Tensor>): LlamaWeights {
  const get = <T extends tf.Tensor>(name: string): T => {
    const x = t.get(name);
    if (!x) throw new Error(`internal: weight "${name}" was not loaded`);
    return x as T;
  };
  const lin = (name: string, bias: boolean): Linear => ({
    kernel: get<tf.Tensor2D>(`${name}.weight`),
    bias: bias ? get<tf.Tensor1D>(`${name}.bias`) : undefined,
  });
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    layers.push({
      inputNorm: get(`${p}.input_layernorm.weight`),
      q: lin(`${p}.self_attn.q_proj`, config.attention_bias),
      k: lin(`${p}.self_attn.k_proj`, config.attention_bias),
      v: lin(`${p}.self_attn.v_proj`, config.attention_bias),
      o: lin(`${p}.self_attn.o_proj`, config.attention_bias),
      postAttentionNorm: get(`${p}.post_attention_layernorm.weight`),
      gate: lin(`${p}.mlp.gate_proj`, config.mlp_bias),
      up: lin(`${p}.mlp.up_proj`, config.mlp_bias),
      down: lin(`${p}.mlp.down_proj`, config.mlp_bias),
    });
  }
  return {
    embedTokens: get("model.embed_tokens.weight"),
    layers,
    norm: get("model.norm.weight"),
    lmHead: config.tie_word_embeddings ? undefined : lin("lm_head", false),
  };
}

/** The inverse of assembleWeights: (HF name, tensor in our layout, role) for every stored tensor. */
export function namedWeights(config: LlamaConfig, w: LlamaWeights): { spec: WeightSpec; tensor: tf.Tensor }[] {
  const byName = new Map<string, tf.Tensor>();
  byName.set("model.embed_tokens.weight", w.embedTokens);
  const lin = (name: string, x: Linear) => {
    byName.set(`${name}.weight`, x.kernel);
    if (x.bias) byName.set(`${name}.bias`, x.bias);
  };
  w.layers.forEach((L, l) => {
    const p = `model.layers.${l}`;
    byName.set(`${p}.input_layernorm.weight`, L.inputNorm);
    lin(`${p}.self_attn.q_proj`, L.q);
    lin(`${p}.self_attn.k_proj`, L.k);
    lin(`${p}.self_attn.v_proj`, L.v);
    lin(`${p}.self_attn.o_proj`, L.o);
    byName.set(`${p}.post_attention_layernorm.weight`, L.postAttentionNorm);
    lin(`${p}.mlp.gate_proj`, L.gate);
    lin(`${p}.mlp.up_proj`, L.up);
    lin(`${p}.mlp.down_proj`, L.down);
  });
  byName.set("model.norm.weight", w.norm);
  if (w.lmHead) lin("lm_head", w.lmHead);
  return llamaWeightTable(config).map((spec) => {
    const tensor = byName.get(spec.name);
    if (!tensor) throw new Error(`internal: no tensor for "${spec.name}"`);
    return { spec, tensor };
  });
}

export { WeightLoadError };

const FLOAT_DTYPES = new Set<SafetensorsDtype>(["F32", "F16", "BF16", "F64"]);

/**
 * Compares a checkpoint's header with the expected table (no tensor data read).
 * Returns the names of tied/ignored keys that were present; throws WeightLoadError listing
 * every missing tensor, unexpected tensor and shape/dtype mismatch.
 */
export function checkCheckpoint(config: LlamaConfig, ckpt: SafetensorsCheckpoint): { skipped: string[] } {
  const table = llamaWeightTable(config);
  const expected = new Map(table.map((s) => [s.name, s]));
  const keys = ckpt.keys();
  const skipped: string[] = [];
  const unexpected: string[] = [];
  for (const k of keys) {
    if (expected.has(k)) continue;
    // A tied checkpoint may still carry lm_head.weight; HF ignores it and so do we.
    if (IGNORED_KEYS.some((re) => re.test(k)) || (config.tie_word_embeddings && k === "lm_head.weight")) skipped.push(k);
    else unexpected.push(k);
  }
  const present = new Set(keys);
  const missing = table.filter((s) => !present.has(s.name)).map((s) => `${s.name} ${JSON.stringify(s.shape)}`);
  const wrong: string[] = [];
  for (const s of table) {
    if (!present.has(s.name)) continue;
    const e = ckpt.entry(s.name);
    if (e.shape.length !== s.shape.length || e.shape.some((d, i) => d !== s.shape[i])) {
      wrong.push(`${s.name}: expected shape ${JSON.stringify(s.shape)}, found ${JSON.stringify(e.shape)} in ${e.file}`);
    } else if (!FLOAT_DTYPES.has(e.dtype)) {
      wrong.push(`${s.name}: expected a floating dtype (F32/F16/BF16), found ${e.dtype} in ${e.file}`);
    }
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.length} tensor(s): ${missing.join(", ")}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.length} tensor(s): ${unexpected.join(", ")}`);
  if (wrong.length) problems.push(...wrong);
  if (problems.length) throw new WeightLoadError(`${ckpt.source}: checkpoint does not match the Llama config (${config.num_hidden_layers} layers, hidden ${config.hidden_size}):\n  ${problems.join("\n  ")}`);
  return { skipped };
}

/**
 * Loads every expected tensor, one at a time: read (→ float32) → tf.tensor → (transpose
 * linear weights) → the array is dropped before the next read. Disposes what it loaded on error.
 */
export function loadWeights(config: LlamaConfig, ckpt: SafetensorsCheckpoint): LlamaWeights {
  checkCheckpoint(config, ckpt);
  const loaded = new Map<string, tf.Tensor>();
  try {
    for (const spec of llamaWeightTable(config)) {
      let tensor: tf.Tensor;
      {
        const data = ckpt.readFloat32(spec.name);
        tensor = tf.tensor(data, spec.shape, "float32");
      }
      if (spec.role === "linear") {
        const kernel = tf.transpose(tensor); // (out, in) → (in, out)
        tensor.dispose();
        tensor = kernel;
      }
      loaded.set(spec.name, tensor);
    }
  } catch (e) {
    loaded.forEach((t) => t.dispose());
    if (e instanceof SafetensorsError) throw new WeightLoadError(e.message);
    throw e;
  }
  return assembleWeights(config, loaded);
}

/** Per-tensor seeds: core's Mulberry32 words (next() is word / 2^32, exactly) modulo 2^31 − 1. */
function seedStream(seed: number): () => number {
  const rng = new Mulberry32(seed >>> 0);
  return () => (rng.next() * 4294967296) % 2147483647;
}

/**
 * Random weights like HF's init: normal(0, initializer_range) for embeddings and linear
 * weights, zeros for biases, ones for norms. Deterministic for a given seed.
 */
export function randomWeights(config: LlamaConfig, seed: number): LlamaWeights {
  const next = seedStream(seed);
  const std = config.initializer_range;
  const made = new Map<string, tf.Tensor>();
  for (const spec of llamaWeightTable(config)) {
    let t: tf.Tensor;
    if (spec.role === "norm") t = tf.ones(spec.shape);
    else if (spec.role === "bias") t = tf.zeros(spec.shape);
    else {
      const shape = spec.role === "linear" ? [spec.shape[1], spec.shape[0]] : spec.shape; // kernels are (in, out)
      t = tf.randomNormal(shape, 0, std, "float32", next());
    }
    made.set(spec.name, t);
  }
  return assembleWeights(config, made);
}

/** HF-named tensors (HF layout) ready for writeSafetensors. Materialises every tensor in memory. */
export function weightsToSafetensors(config: LlamaConfig, w: LlamaWeights, dtype: "F32" | "F16" | "BF16"): Record<string, TensorToWrite> {
  const out: Record<string, TensorToWrite> = {};
  for (const { spec, tensor } of namedWeights(config, w)) {
    const hf = spec.role === "linear" ? tf.tidy(() => tf.transpose(tensor)) : tensor;
    out[spec.name] = { shape: spec.shape, data: hf.dataSync() as Float32Array, dtype };
    if (hf !== tensor) hf.dispose();
  }
  return out;
}

export function saveWeights(path: string, config: LlamaConfig, w: LlamaWeights, dtype: "F32" | "F16" | "BF16" = "F32"): void {
  writeSafetensors(path, weightsToSafetensors(config, w, dtype), { format: "pt" });
}

export function disposeWeights(config: LlamaConfig, w: LlamaWeights): void {
  for (const { tensor } of namedWeights(config, w)) tensor.dispose();
}
