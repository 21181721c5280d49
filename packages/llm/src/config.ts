/**
 * Llama configuration, under Hugging Face `config.json` field names.
 *
 * `parseLlamaConfig` validates a raw object (field types, defaults, consistency of
 * the head counts, the `rope_scaling` block); `readLlamaConfig` reads a file/folder.
 * Presets give the real sizes (Llama-2-7B, TinyLlama-1.1B) and the tiny test shape.
 */
import { z } from "zod";
import { ConfigError, nonNegativeNumber, positiveInt, positiveNumber, readJsonFile, validateConfig } from "@lm4lv/core";

/** Linear position interpolation (HF `rope_type: "linear"`): every frequency divided by `factor`. */
const LINEAR_ROPE_SCALING = z.object({ rope_type: z.literal("linear"), factor: positiveNumber() });

/** Llama 3 frequency-dependent RoPE scaling (HF `rope_type: "llama3"`). */
const LLAMA3_ROPE_SCALING = z
  .object({
    rope_type: z.literal("llama3"),
    factor: positiveNumber(),
    low_freq_factor: positiveNumber(),
    high_freq_factor: positiveNumber(),
    original_max_position_embeddings: positiveNumber(),
  })
  .refine((s) => s.high_freq_factor > s.low_freq_factor, {
    path: ["high_freq_factor"],
    message: "must exceed low_freq_factor",
  });

/**
 * `rope_scaling`: null, `{rope_type: "default"}` (= null), "linear" or "llama3"; older exports
 * name the kind `type`. Fields besides the kind's own are dropped.
 */
const ROPE_SCALING = z
  .preprocess(
    (v) => (v && typeof v === "object" && !Array.isArray(v) && (v as { rope_type?: unknown }).rope_type == null && "type" in v ? { ...v, rope_type: (v as { type: unknown }).type } : v),
    z
      .discriminatedUnion("rope_type", [LINEAR_ROPE_SCALING, LLAMA3_ROPE_SCALING, z.object({ rope_type: z.literal("default") })], {
        error: 'unsupported (use null, "linear" or "llama3")',
      })
      .nullable(),
  )
  .transform((s) => (s?.rope_type === "default" ? null : s));

export type LinearRopeScaling = z.output<typeof LINEAR_ROPE_SCALING>;
export type Llama3RopeScaling = z.output<typeof LLAMA3_ROPE_SCALING>;
export type RopeScaling = LinearRopeScaling | Llama3RopeScaling;

const tokenId = () => z.number("expected a token id (an integer >= 0) or null").int("expected a token id (an integer >= 0) or null").nonnegative("expected a token id (an integer >= 0) or null");

/**
 * `config.json` of a `LlamaForCausalLM`: HF field names and defaults; fields it does not list are
 * kept. `num_key_value_heads` defaults to `num_attention_heads` (grouped-query attention when
 * smaller), `head_dim` to hidden_size / num_attention_heads.
 */
export const LLAMA_CONFIG_SCHEMA = z
  .looseObject({
    model_type: z.string().optional(),
    vocab_size: positiveInt(),
    hidden_size: positiveInt(),
    intermediate_size: positiveInt(),
    num_hidden_layers: positiveInt(),
    num_attention_heads: positiveInt(),
    /** Grouped-query attention: key/value heads (default: num_attention_heads). */
    num_key_value_heads: positiveInt().nullish(),
    /** Width of one head (default: hidden_size / num_attention_heads). */
    head_dim: positiveInt("expected a positive even integer").refine((v) => v % 2 === 0, "expected a positive even integer").nullish(),
    rms_norm_eps: positiveNumber().default(1e-6),
    rope_theta: positiveNumber().default(10000),
    rope_scaling: ROPE_SCALING.default(null),
    max_position_embeddings: positiveInt().default(2048),
    tie_word_embeddings: z.boolean().default(false),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    hidden_act: z.literal("silu", 'only "silu" is supported').default("silu"),
    /** Std of the normal init used by `fromConfig` (HF field). */
    initializer_range: nonNegativeNumber().default(0.02),
    bos_token_id: tokenId().nullable().default(null),
    /** One id or a list (Llama 3 lists several). */
    eos_token_id: z
      .union([tokenId(), z.array(tokenId())], "expected a token id, a list of ids or null")
      .nullable()
      .default(null),
    pad_token_id: tokenId().nullable().optional(),
    torch_dtype: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    const kv = c.num_key_value_heads ?? c.num_attention_heads;
    if (c.num_attention_heads % kv !== 0) {
      ctx.addIssue({ code: "custom", path: ["num_key_value_heads"], input: kv, message: `must divide num_attention_heads (${c.num_attention_heads})` });
    }
    if (c.head_dim == null && c.hidden_size % c.num_attention_heads !== 0) {
      ctx.addIssue({ code: "custom", path: ["hidden_size"], input: c.hidden_size, message: `not a multiple of num_attention_heads (${c.num_attention_heads}) and "head_dim" is not given` });
    } else if (c.head_dim == null && (c.hidden_size / c.num_attention_heads) % 2 !== 0) {
      ctx.addIssue({ code: "custom", path: ["hidden_size"], input: c.hidden_size, message: `hidden_size / num_attention_heads (${c.num_attention_heads}) is odd: RoPE needs an even head_dim` });
    }
  })
  .transform((c): typeof c & { num_key_value_heads: number; head_dim: number } => ({
    ...c,
    num_key_value_heads: c.num_key_value_heads ?? c.num_attention_heads,
    head_dim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
  }));

/** Llama configuration, typed by LLAMA_CONFIG_SCHEMA (defaults filled, unknown fields kept). */
export type LlamaConfig = z.output<typeof LLAMA_CONFIG_SCHEMA>;

/** Validates a raw HF config object and fills defaults. `source` names the file in errors. */
export function parseLlamaConfig(raw: Record<string, unknown>, source = "llama config"): LlamaConfig {
  return validateConfig(raw, LLAMA_CONFIG_SCHEMA, source);
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
