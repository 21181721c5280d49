/**
 * The parameter table of `ViTMAEForPreTraining`: every Hugging Face state-dict name with
 * its shape, explicit loading against it, and HF-style random initialisation.
 *
 * All tensors keep PyTorch layout (linear weights `[out, in]`, the patch conv `[D, C, p, p]`);
 * none needs transposing on load.
 */
import { Mulberry32, SafetensorsCheckpoint, WeightLoadError } from "@lm4lv/core";
import { normalPair } from "@lm4lv/data";
import type { ViTMAEConfig } from "./config.js";
import { sincosPositionEmbedding } from "./ops.js";

export interface WeightSpec {
  name: string;
  shape: number[];
  /** How `initWeights` fills it. */
  init: "normal" | "zeros" | "ones" | "xavier" | "sincos-encoder" | "sincos-decoder";
}

function blockSpecs(prefix: string, dim: number, mlp: number, qkvBias: boolean): WeightSpec[] {
  const specs: WeightSpec[] = [];
  const lin = (name: string, out: number, inp: number, bias = true) => {
    specs.push({ name: `${prefix}.${name}.weight`, shape: [out, inp], init: "normal" });
    if (bias) specs.push({ name: `${prefix}.${name}.bias`, shape: [out], init: "zeros" });
  };
  const norm = (name: string) => {
    specs.push({ name: `${prefix}.${name}.weight`, shape: [dim], init: "ones" });
    specs.push({ name: `${prefix}.${name}.bias`, shape: [dim], init: "zeros" });
  };
  lin("attention.attention.query", dim, dim, qkvBias);
  lin("attention.attention.key", dim, dim, qkvBias);
  lin("attention.attention.value", dim, dim, qkvBias);
  lin("attention.output.dense", dim, dim);
  lin("intermediate.dense", mlp, dim);
  lin("output.dense", dim, mlp);
  norm("layernorm_before");
  norm("layernorm_after");
  return specs;
}

/** Every tensor of `ViTMAEForPreTraining` for `config`, in a fixed order. */
export function expectedWeights(config: ViTMAEConfig): WeightSpec[] {
  const { hidden_size: d, patch_size: p, num_channels: c, decoder_hidden_size: dd } = config;
  const n = (config.image_size / p) ** 2;
  const specs: WeightSpec[] = [
    { name: "vit.embeddings.cls_token", shape: [1, 1, d], init: "normal" },
    { name: "vit.embeddings.position_embeddings", shape: [1, n + 1, d], init: "sincos-encoder" },
    { name: "vit.embeddings.patch_embeddings.projection.weight", shape: [d, c, p, p], init: "xavier" },
    { name: "vit.embeddings.patch_embeddings.projection.bias", shape: [d], init: "zeros" },
  ];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    specs.push(...blockSpecs(`vit.encoder.layer.${i}`, d, config.intermediate_size, config.qkv_bias));
  }
  specs.push(
    { name: "vit.layernorm.weight", shape: [d], init: "ones" },
    { name: "vit.layernorm.bias", shape: [d], init: "zeros" },
    { name: "decoder.mask_token", shape: [1, 1, dd], init: "normal" },
    { name: "decoder.decoder_pos_embed", shape: [1, n + 1, dd], init: "sincos-decoder" },
    { name: "decoder.decoder_embed.weight", shape: [dd, d], init: "normal" },
    { name: "decoder.decoder_embed.bias", shape: [dd], init: "zeros" },
  );
  for (let i = 0; i < config.decoder_num_hidden_layers; i++) {
    specs.push(...blockSpecs(`decoder.decoder_layers.${i}`, dd, config.decoder_intermediate_size, config.qkv_bias));
  }
  specs.push(
    { name: "decoder.decoder_norm.weight", shape: [dd], init: "ones" },
    { name: "decoder.decoder_norm.bias", shape: [dd], init: "zeros" },
    { name: "decoder.decoder_pred.weight", shape: [p * p * c, dd], init: "normal" },
    { name: "decoder.decoder_pred.bias", shape: [p * p * c], init: "zeros" },
  );
  return specs;
}

export { WeightLoadError };

export interface RawWeight {
  shape: number[];
  data: Float32Array;
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/**
 * Reads every expected tensor from a checkpoint (file or folder). Missing, unexpected
 * (when `strict`) and mis-shaped tensors are all collected and reported by name.
 */
export function loadWeights(pathOrDir: string, config: ViTMAEConfig, opts: { strict?: boolean } = {}): Map<string, RawWeight> {
  const strict = opts.strict ?? true;
  const ckpt = SafetensorsCheckpoint.open(pathOrDir);
  try {
    const specs = expectedWeights(config);
    const expected = new Set(specs.map((s) => s.name));
    const problems: string[] = [];
    for (const s of specs) {
      if (!ckpt.has(s.name)) {
        problems.push(`missing "${s.name}" (expected shape ${fmt(s.shape)})`);
        continue;
      }
      const e = ckpt.entry(s.name);
      if (e.shape.length !== s.shape.length || e.shape.some((v, i) => v !== s.shape[i])) {
        problems.push(`"${s.name}" has shape ${fmt(e.shape)}, expected ${fmt(s.shape)}`);
      } else if (!["F32", "F16", "BF16", "F64"].includes(e.dtype)) {
        problems.push(`"${s.name}" has dtype ${e.dtype}, expected a floating type`);
      }
    }
    if (strict) {
      for (const k of ckpt.keys()) if (!expected.has(k)) problems.push(`unexpected "${k}" (shape ${fmt(ckpt.entry(k).shape)})`);
    }
    if (problems.length) {
      throw new WeightLoadError(`${ckpt.source}: checkpoint does not match the ViTMAE config (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  ${problems.join("\n  ")}`);
    }
    const out = new Map<string, RawWeight>();
    for (const s of specs) out.set(s.name, { shape: s.shape, data: ckpt.readFloat32(s.name) });
    return out;
  } finally {
    ckpt.close();
  }
}

/** A small seeded generator (core's Mulberry32) with Box–Muller normals (`normalPair` of @lm4lv/data). */
export class SeededRandom {
  private readonly rng: Mulberry32;
  private spare: number | undefined;

  constructor(seed: number) {
    this.rng = new Mulberry32((seed >>> 0) ^ 0x9e3779b9);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.rng.next();
  }

  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const [z, spare] = normalPair(() => this.uniform());
    this.spare = spare;
    return z;
  }
}

/**
 * Random weights as HF's `_init_weights`: linear weights and tokens N(0, initializer_range),
 * biases 0, LayerNorm 1/0, the patch conv Xavier-uniform over `[D, C·p·p]`, and the
 * fixed sin-cos position tables.
 */
export function initWeights(config: ViTMAEConfig, seed: number): Map<string, RawWeight> {
  const rng = new SeededRandom(seed);
  const grid = config.image_size / config.patch_size;
  const out = new Map<string, RawWeight>();
  for (const s of expectedWeights(config)) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    switch (s.init) {
      case "zeros": data = new Float32Array(size); break;
      case "ones": data = new Float32Array(size).fill(1); break;
      case "normal": {
        data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = rng.normal() * config.initializer_range;
        break;
      }
      case "xavier": {
        const fanOut = s.shape[0];
        const fanIn = size / fanOut;
        const bound = Math.sqrt(6 / (fanIn + fanOut));
        data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = (2 * rng.uniform() - 1) * bound;
        break;
      }
      case "sincos-encoder": data = sincosPositionEmbedding(config.hidden_size, grid); break;
      case "sincos-decoder": data = sincosPositionEmbedding(config.decoder_hidden_size, grid); break;
    }
    out.set(s.name, { shape: s.shape, data });
  }
  return out;
}
