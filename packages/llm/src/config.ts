/**
 * Llama configuration, under Hugging Face `config.json` field names.
 *
 * `parseLlamaConfig` validates a raw object (field types, defaults, consistency of
 * the head counts, the `rope_scaling` block); `readLlamaConfig` reads a file/folder.
 * Presets give the real sizes (Llama-2-7B, TinyLlama-1.1B) and the tiny test shape.
 */
import { ConfigError, readJsonFile, validateConfig, positive } from "@lm4lv/core";
import type { ConfigSchema } from "@lm4lv/core";

/** Llama 3 frequency-dependent RoPE scaling (HF `rope_type: "llama3"`). */
export interface Llama3RopeScaling {
  rope_type: "llama3";
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/** Linear position interpolation (HF `rope_type: "linear"`): every frequency divided by `factor`. */
export interface LinearRopeScaling {
  rope_type: "linear";
  factor: number;
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

export interface LlamaConfig {
  model_type?: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Grouped-query attention: key/value heads (default: num_attention_heads). */
  num_key_value_heads: number;
  /** Width of one head (default: hidden_size / num_attention_heads). */
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  attention_bias: boolean;
  mlp_bias: boolean;
  hidden_act: "silu";
  /** Std of the normal init used by `fromConfig` (HF field). */
  initializer_range: number;
  bos_token_id: number | null;
  /** One id or a list (Llama 3 lists several). */
  eos_token_id: number | number[] | null;
  pad_token_id?: number | null;
  torch_dtype?: string;
  [extra: string]: unknown;
}

// Schema checks receive the (already type-checked) value as unknown.
const isPositive = (v: unknown) => positive(v as number);
const nonNegative = (v: unknown) => ((v as number) >= 0 ? undefined : "must be >= 0");

/** Field schema; head counts and `rope_scaling` get extra checks in parseLlamaConfig. */
export const LLAMA_CONFIG_SCHEMA: ConfigSchema = {
  vocab_size: { type: "integer", check: isPositive },
  hidden_size: { type: "integer", check: isPositive },
  intermediate_size: { type: "integer", check: isPositive },
  num_hidden_layers: { type: "integer", check: isPositive },
  num_attention_heads: { type: "integer", check: isPositive },
  rms_norm_eps: { type: "number", default: 1e-6, check: isPositive },
  rope_theta: { type: "number", default: 10000, check: isPositive },
  rope_scaling: { type: "object|null", default: null },
  max_position_embeddings: { type: "integer", default: 2048, check: isPositive },
  tie_word_embeddings: { type: "boolean", default: false },
  attention_bias: { type: "boolean", default: false },
  mlp_bias: { type: "boolean", default: false },
  hidden_act: { type: "string", default: "silu", check: (v: unknown) => (v === "silu" ? undefined : `only "silu" is supported, got "${v}"`) },
  initializer_range: { type: "number", default: 0.02, check: nonNegative },
};

function checkTokenId(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === "number" && Number.isInteger(v) && v >= 0);
}

function parseRopeScaling(raw: unknown, source: string): RopeScaling | null {
  if (raw === null || raw === undefined) return null;
  const r = raw as Record<string, unknown>;
  // Older exports call the field "type".
  const kind = r.rope_type ?? r.type;
  const num = (name: string): number => {
    const v = r[name];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError(`${source}: field "rope_scaling.${name}" should be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (kind === "default") return null;
  if (kind === "linear") return { rope_type: "linear", factor: num("factor") };
  if (kind === "llama3") {
    const s: Llama3RopeScaling = {
      rope_type: "llama3",
      factor: num("factor"),
      low_freq_factor: num("low_freq_factor"),
      high_freq_factor: num("high_freq_factor"),
      original_max_position_embeddings: num("original_max_position_embeddings"),
    };
    if (s.high_freq_factor <= s.low_freq_factor) {
      throw new ConfigError(`${source}: field "rope_scaling": high_freq_factor (${s.high_freq_factor}) must exceed low_freq_factor (${s.low_freq_factor})`);
    }
    return s;
  }
  throw new ConfigError(`${source}: field "rope_scaling.rope_type" ${JSON.stringify(kind)} is not supported (use null, "linear" or "llama3")`);
}

/** Validates a raw HF config object and fills defaults. `source` names the file in errors. */
export function parseLlamaConfig(raw: Record<string, unknown>, source = "llama config"): LlamaConfig {
  const c = validateConfig<LlamaConfig>(raw, LLAMA_CONFIG_SCHEMA, source);
  const heads = c.num_attention_heads;
  const kv = raw.num_key_value_heads ?? heads;
  if (typeof kv !== "number" || !Number.isInteger(kv) || kv <= 0) {
    throw new ConfigError(`${source}: field "num_key_value_heads" should be a positive integer, got ${JSON.stringify(kv)}`);
  }
  if (heads % kv !== 0) {
    throw new ConfigError(`${source}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kv})`);
  }
  c.num_key_value_heads = kv;
  const hd = raw.head_dim ?? (c.hidden_size % heads === 0 ? c.hidden_size / heads : undefined);
  if (hd === undefined) {
    throw new ConfigError(`${source}: hidden_size (${c.hidden_size}) is not a multiple of num_attention_heads (${heads}) and "head_dim" is not given`);
  }
  if (typeof hd !== "number" || !Number.isInteger(hd) || hd <= 0 || hd % 2 !== 0) {
    throw new ConfigError(`${source}: field "head_dim" should be a positive even integer, got ${JSON.stringify(hd)}`);
  }
  c.head_dim = hd;
  c.rope_scaling = parseRopeScaling(raw.rope_scaling, source);
  for (const f of ["bos_token_id", "pad_token_id"] as const) {
    if (!checkTokenId(raw[f])) throw new ConfigError(`${source}: field "${f}" should be a token id or null, got ${JSON.stringify(raw[f])}`);
  }
  const eos = raw.eos_token_id;
  if (!(checkTokenId(eos) || (Array.isArray(eos) && eos.every((e) => checkTokenId(e) && e !== null)))) {
    throw new ConfigError(`${source}: field "eos_token_id" should be a token id, a list of ids or null, got ${JSON.stringify(eos)}`);
  }
  c.bos_token_id = (raw.bos_token_id as number | null | undefined) ?? null;
  c.eos_token_id = (eos as number | number[] | null | undefined) ?? null;
  return c;
}

/** Reads and validates `config.json` (a file, or a folder holding one). */
export function readLlamaConfig(pathOrDir: string): LlamaConfig {
  const { path, json } = readJsonFile(pathOrDir);
  return parseLlamaConfig(json, path);
}

/** Named sizes, as in the published HF config files. */
export const LLAMA_PRESETS = {
  "llama-2-7b": {
    vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32,
    num_attention_heads: 32, num_key_value_heads: 32, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 4096, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  },
  "tinyllama-1.1b": {
    vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
    num_attention_heads: 32, num_key_value_heads: 4, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 2048, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
  },
  /** The shape of the `llama_tiny` reference fixture. */
  tiny: {
    vocab_size: 256, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, rms_norm_eps: 1e-6, rope_theta: 10000,
    max_position_embeddings: 128, tie_word_embeddings: false, initializer_range: 0.1, bos_token_id: 1, eos_token_id: 2,
  },
} as const satisfies Record<string, Record<string, unknown>>;

export type LlamaPresetName = keyof typeof LLAMA_PRESETS;

/** A preset config, optionally with fields overridden (validated like a file). */
export function llamaPreset(name: LlamaPresetName, overrides: Record<string, unknown> = {}): LlamaConfig {
  const base = LLAMA_PRESETS[name];
  if (!base) throw new ConfigError(`unknown Llama preset "${name}" (known: ${Object.keys(LLAMA_PRESETS).join(", ")})`);
  return parseLlamaConfig({ model_type: "llama", ...base, ...overrides }, `preset "${name}"`);
}
