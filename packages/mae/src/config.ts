/**
 * ViTMAE configuration, typed with the field names of Hugging Face's `config.json`
 * (`ViTMAEConfig`), validated when read, with presets for the released sizes.
 */
import { ConfigError, readJsonFile, validateConfig, positive } from "@lm4lv/core";
import type { ConfigSchema } from "@lm4lv/core";

export interface ViTMAEConfig {
  model_type?: string;
  architectures?: string[];
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  /** "gelu" (exact erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation), "relu", "silu". */
  hidden_act: string;
  layer_norm_eps: number;
  image_size: number;
  patch_size: number;
  num_channels: number;
  qkv_bias: boolean;
  decoder_num_attention_heads: number;
  decoder_hidden_size: number;
  decoder_num_hidden_layers: number;
  decoder_intermediate_size: number;
  mask_ratio: number;
  norm_pix_loss: boolean;
  /** Std of the normal init of linear weights and tokens (random init only). */
  initializer_range: number;
  [extra: string]: unknown;
}

export const SUPPORTED_ACTIVATIONS = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"] as const;

const pos = (v: unknown) => positive(v as number);
const even = (v: number) => (v % 2 === 0 ? undefined : "must be even (sin-cos position embedding)");

/** Field schema; defaults are HF's `ViTMAEConfig` defaults. */
export const VIT_MAE_SCHEMA: ConfigSchema = {
  hidden_size: { type: "integer", default: 768, check: (v) => positive(v as number) ?? multipleOf4(v as number) },
  num_hidden_layers: { type: "integer", default: 12, check: (v) => ((v as number) >= 0 ? undefined : "must be >= 0") },
  num_attention_heads: { type: "integer", default: 12, check: pos },
  intermediate_size: { type: "integer", default: 3072, check: pos },
  hidden_act: {
    type: "string",
    default: "gelu",
    check: (v) => ((SUPPORTED_ACTIVATIONS as readonly string[]).includes(v as string) ? undefined : `unsupported activation (expected one of ${SUPPORTED_ACTIVATIONS.join(", ")})`),
  },
  layer_norm_eps: { type: "number", default: 1e-12, check: pos },
  image_size: { type: "integer", default: 224, check: pos },
  patch_size: { type: "integer", default: 16, check: pos },
  num_channels: { type: "integer", default: 3, check: pos },
  qkv_bias: { type: "boolean", default: true },
  decoder_num_attention_heads: { type: "integer", default: 16, check: pos },
  decoder_hidden_size: { type: "integer", default: 512, check: (v) => positive(v as number) ?? multipleOf4(v as number) },
  decoder_num_hidden_layers: { type: "integer", default: 8, check: (v) => ((v as number) >= 0 ? undefined : "must be >= 0") },
  decoder_intermediate_size: { type: "integer", default: 2048, check: pos },
  mask_ratio: { type: "number", default: 0.75, check: (v) => ((v as number) >= 0 && (v as number) < 1 ? undefined : "must be in [0, 1)") },
  norm_pix_loss: { type: "boolean", default: false },
  initializer_range: { type: "number", default: 0.02, check: (v) => ((v as number) >= 0 ? undefined : "must be >= 0") },
};

function multipleOf4(v: number): string | undefined {
  return even(v) ?? (v % 4 === 0 ? undefined : "must be a multiple of 4 (2-D sin-cos position embedding)");
}

/** Checks the relations between fields that a per-field schema cannot express. */
function checkRelations(c: ViTMAEConfig, source: string): void {
  const problems: string[] = [];
  if (c.hidden_size % c.num_attention_heads !== 0) {
    problems.push(`field "hidden_size" (${c.hidden_size}) must be divisible by "num_attention_heads" (${c.num_attention_heads})`);
  }
  if (c.decoder_hidden_size % c.decoder_num_attention_heads !== 0) {
    problems.push(`field "decoder_hidden_size" (${c.decoder_hidden_size}) must be divisible by "decoder_num_attention_heads" (${c.decoder_num_attention_heads})`);
  }
  if (c.image_size % c.patch_size !== 0) {
    problems.push(`field "image_size" (${c.image_size}) must be divisible by "patch_size" (${c.patch_size})`);
  }
  if (problems.length) throw new ConfigError(`${source}: ${problems.join("; ")}`);
}

/** Validates a raw object (e.g. parsed config.json) and fills HF defaults; errors name `source` and the field. */
export function parseViTMAEConfig(raw: Record<string, unknown>, source = "ViTMAEConfig"): ViTMAEConfig {
  const c = validateConfig<ViTMAEConfig>(raw, VIT_MAE_SCHEMA, source);
  checkRelations(c, source);
  return c;
}

/** Reads and validates `config.json` (a file or a folder holding one). */
export function readViTMAEConfig(pathOrDir: string): ViTMAEConfig {
  const { path, json } = readJsonFile(pathOrDir);
  if (json.model_type !== undefined && json.model_type !== "vit_mae") {
    throw new ConfigError(`${path}: field "model_type" is ${JSON.stringify(json.model_type)}, expected "vit_mae"`);
  }
  return parseViTMAEConfig(json, path);
}

const DECODER = {
  decoder_hidden_size: 512,
  decoder_num_hidden_layers: 8,
  decoder_num_attention_heads: 16,
  decoder_intermediate_size: 2048,
};

const COMMON = {
  model_type: "vit_mae",
  architectures: ["ViTMAEForPreTraining"],
  hidden_act: "gelu",
  layer_norm_eps: 1e-12,
  image_size: 224,
  num_channels: 3,
  qkv_bias: true,
  mask_ratio: 0.75,
  norm_pix_loss: false,
  initializer_range: 0.02,
  ...DECODER,
};

/** Shapes of facebook/vit-mae-base|large|huge. */
export const VIT_MAE_PRESETS = {
  "mae-base": { ...COMMON, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, patch_size: 16 },
  "mae-large": { ...COMMON, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, patch_size: 16 },
  "mae-huge": { ...COMMON, hidden_size: 1280, num_hidden_layers: 32, num_attention_heads: 16, intermediate_size: 5120, patch_size: 14 },
} as const satisfies Record<string, ViTMAEConfig>;

export type ViTMAEPresetName = keyof typeof VIT_MAE_PRESETS;

/** A preset as a fresh, validated config; `overrides` replace fields. */
export function vitMAEPreset(name: ViTMAEPresetName, overrides: Partial<ViTMAEConfig> = {}): ViTMAEConfig {
  const base = VIT_MAE_PRESETS[name];
  if (!base) throw new ConfigError(`unknown ViTMAE preset "${name}" (expected one of ${Object.keys(VIT_MAE_PRESETS).join(", ")})`);
  return parseViTMAEConfig({ ...structuredClone(base), ...overrides } as Record<string, unknown>, `preset ${name}`);
}
