/**
 * ViTMAE configuration, typed with the field names of Hugging Face's `config.json`
 * (`ViTMAEConfig`), validated when read, with presets for the released sizes.
 */
import { z } from "zod";
import { ConfigError, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber, readJsonFile, validateConfig } from "@lm4lv/core";

/** "gelu" (exact erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation), "relu", "silu". */
export const SUPPORTED_ACTIVATIONS = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu"] as const;

/** Widths feeding the 2-D sin-cos position embedding: a positive multiple of 4. */
const sinCosWidth = () => positiveInt().refine((v) => v % 4 === 0, "must be a multiple of 4 (2-D sin-cos position embedding)");

/**
 * `config.json` of `ViTMAEForPreTraining`: HF field names, HF's `ViTMAEConfig` defaults. Fields it
 * does not list (HF configs carry many) are kept as they are. The relations between fields
 * (widths divisible by the head counts, the image by the patch) are checked too.
 */
export const VIT_MAE_SCHEMA = z
  .looseObject({
    model_type: z.literal("vit_mae", 'expected "vit_mae"').optional(),
    architectures: z.array(z.string()).optional(),
    hidden_size: sinCosWidth().default(768),
    num_hidden_layers: nonNegativeInt().default(12),
    num_attention_heads: positiveInt().default(12),
    intermediate_size: positiveInt().default(3072),
    hidden_act: oneOf(SUPPORTED_ACTIVATIONS).default("gelu"),
    layer_norm_eps: positiveNumber().default(1e-12),
    image_size: positiveInt().default(224),
    patch_size: positiveInt().default(16),
    num_channels: positiveInt().default(3),
    qkv_bias: z.boolean().default(true),
    decoder_num_attention_heads: positiveInt().default(16),
    decoder_hidden_size: sinCosWidth().default(512),
    decoder_num_hidden_layers: nonNegativeInt().default(8),
    decoder_intermediate_size: positiveInt().default(2048),
    mask_ratio: z.number("expected a number in [0, 1)").min(0, "expected a number in [0, 1)").lt(1, "expected a number in [0, 1)").default(0.75),
    norm_pix_loss: z.boolean().default(false),
    /** Std of the normal init of linear weights and tokens (random init only). */
    initializer_range: nonNegativeNumber().default(0.02),
  })
  .superRefine((c, ctx) => {
    const divisible = (field: "hidden_size" | "decoder_hidden_size" | "image_size", by: "num_attention_heads" | "decoder_num_attention_heads" | "patch_size") => {
      if (c[field] % c[by] !== 0) ctx.addIssue({ code: "custom", path: [field], input: c[field], message: `must be divisible by ${by} (${c[by]})` });
    };
    divisible("hidden_size", "num_attention_heads");
    divisible("decoder_hidden_size", "decoder_num_attention_heads");
    divisible("image_size", "patch_size");
  });

/** ViTMAE configuration, typed by VIT_MAE_SCHEMA (every HF field filled, unknown ones kept). */
export type ViTMAEConfig = z.output<typeof VIT_MAE_SCHEMA>;

/** Validates a raw object (e.g. parsed config.json) and fills HF defaults; errors name `source` and the field. */
export function parseViTMAEConfig(raw: Record<string, unknown>, source = "ViTMAEConfig"): ViTMAEConfig {
  return validateConfig(raw, VIT_MAE_SCHEMA, source);
}

/** Reads and validates `config.json` (a file or a folder holding one). */
export function readViTMAEConfig(pathOrDir: string): ViTMAEConfig {
  const { path, json } = readJsonFile(pathOrDir);
  return parseViTMAEConfig(json, path);
}

const DECODER = {
  decoder_hidden_size: 512,
  decoder_num_hidden_layers: 8,
  decoder_num_attention_heads: 16,
  decoder_intermediate_size: 2048,
};

const COMMON = {
  model_type: "vit_mae" as const,
  architectures: ["ViTMAEForPreTraining"],
  hidden_act: "gelu" as const,
  layer_norm_eps: 1e-12,
  image_size: 224,
  num_channels: 3,
  qkv_bias: true,
  mask_ratio: 0.75,
  norm_pix_loss: false,
  initializer_range: 0.02,
  ...DECODER,
};

/**
 * Shapes of facebook/vit-mae-base|large|huge, and "tiny": the embedded default (64 px images,
 * 8 px patches, a 6-layer 192-wide encoder, a 4-layer 128-wide decoder; ≈ 3.6 M parameters).
 */
export const VIT_MAE_PRESETS = {
  tiny: {
    ...COMMON,
    hidden_size: 192,
    num_hidden_layers: 6,
    num_attention_heads: 6,
    intermediate_size: 768,
    layer_norm_eps: 1e-6,
    image_size: 64,
    patch_size: 8,
    decoder_hidden_size: 128,
    decoder_num_hidden_layers: 4,
    decoder_num_attention_heads: 4,
    decoder_intermediate_size: 512,
  },
  "mae-base": { ...COMMON, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, patch_size: 16 },
  "mae-large": { ...COMMON, hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, patch_size: 16 },
  "mae-huge": { ...COMMON, hidden_size: 1280, num_hidden_layers: 32, num_attention_heads: 16, intermediate_size: 5120, patch_size: 14 },
} as const satisfies Record<string, ViTMAEConfig>;

export type ViTMAEPresetName = keyof typeof VIT_MAE_PRESETS;

/** A preset as a fresh, validated config; `overrides` replace fields (undefined ones are ignored). */
export function vitMAEPreset(name: ViTMAEPresetName, overrides: Partial<ViTMAEConfig> = {}): ViTMAEConfig {
  const base = VIT_MAE_PRESETS[name];
  if (!base) throw new ConfigError(`unknown ViTMAE preset "${name}" (expected one of ${Object.keys(VIT_MAE_PRESETS).join(", ")})`);
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return parseViTMAEConfig({ ...structuredClone(base), ...given } as Record<string, unknown>, `preset ${name}`);
}
