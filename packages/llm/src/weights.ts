/**
 * Llama weights: the table of expected HF names and shapes, checked loading from
 * safetensors and random init, into a `ParameterStore` (HF names; the tensors of role
 * "linear" are HF Linear weights `[out, in]`, which the store holds as kernels `[in, out]`).
 * When `tie_word_embeddings` is set the output projection reuses `model.embed_tokens.weight`.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32, ParameterStore, SafetensorsCheckpoint, SafetensorsError, WeightLoadError } from "@lm4lv/core";
import type { ParameterInit, SafetensorsDtype } from "@lm4lv/core";
import type { LlamaConfig } from "./config.js";

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
 * Loads every expected tensor, one at a time: read (→ float32) → tf.tensor → (the store transposes
 * Linear weights) → the array is dropped before the next read. Disposes what it loaded on error.
 */
export function loadParameters(config: LlamaConfig, ckpt: SafetensorsCheckpoint): ParameterStore {
  checkCheckpoint(config, ckpt);
  function* entries(): Generator<ParameterInit> {
    for (const spec of llamaWeightTable(config)) {
      yield { name: spec.name, tensor: tf.tensor(ckpt.readFloat32(spec.name), spec.shape, "float32"), linear: spec.role === "linear" };
    }
  }
  try {
    return new ParameterStore("LlamaForCausalLM", entries());
  } catch (e) {
    if (e instanceof SafetensorsError) throw new WeightLoadError(e.message);
    throw e;
  }
}

/** Per-tensor seeds: core's Mulberry32 words (next() is word / 2^32, exactly) modulo 2^31 − 1. */
function seedStream(seed: number): () => number {
  const rng = new Mulberry32(seed >>> 0);
  return () => (rng.next() * 4294967296) % 2147483647;
}

/**
 * Random weights like HF's init: normal(0, initializer_range) for embeddings and linear
 * weights, zeros for biases, ones for norms. Deterministic for a given seed (Linear weights are
 * drawn as kernels `[in, out]`, as they always were, so a seed keeps its weights).
 */
export function randomParameters(config: LlamaConfig, seed: number): ParameterStore {
  const next = seedStream(seed);
  const std = config.initializer_range;
  function* entries(): Generator<ParameterInit> {
    for (const spec of llamaWeightTable(config)) {
      const linear = spec.role === "linear";
      let tensor: tf.Tensor;
      if (spec.role === "norm") tensor = tf.ones(spec.shape);
      else if (spec.role === "bias") tensor = tf.zeros(spec.shape);
      else tensor = tf.randomNormal(linear ? [spec.shape[1], spec.shape[0]] : spec.shape, 0, std, "float32", next());
      yield { name: spec.name, tensor, linear, layout: linear ? "kernel" : "hf" };
    }
  }
  return new ParameterStore("LlamaForCausalLM", entries());
}

/**
 * A store holding copies of HF-named, HF-layout tensors, checked against the table for `config`
 * (every name, no other, each shape): the caller keeps its tensors.
 */
export function parametersFrom(config: LlamaConfig, tensors: ReadonlyMap<string, tf.Tensor>): ParameterStore {
  const table = llamaWeightTable(config);
  const problems: string[] = [];
  for (const s of table) {
    const t = tensors.get(s.name);
    if (!t) problems.push(`missing ${s.name} ${JSON.stringify(s.shape)}`);
    else if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) problems.push(`${s.name}: expected shape ${JSON.stringify(s.shape)}, got ${JSON.stringify(t.shape)}`);
  }
  const expected = new Set(table.map((s) => s.name));
  for (const name of tensors.keys()) if (!expected.has(name)) problems.push(`unexpected ${name}`);
  if (problems.length) throw new WeightLoadError(`LlamaForCausalLM.fromParameters: the tensors do not match the config:\n  ${problems.join("\n  ")}`);
  return new ParameterStore(
    "LlamaForCausalLM",
    table.map((s) => ({ name: s.name, tensor: tf.clone(tensors.get(s.name)!), linear: s.role === "linear" })),
  );
}
