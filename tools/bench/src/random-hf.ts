/**
 * Random-weight Hugging Face folders at real model shapes, for benchmarks and scale tests (never
 * shipped weights):
 *
 *   node tools/bench/dist/random-hf.js <preset> <out-dir> [--seed N] [--dtype F16|BF16|F32]
 *                                      [--shard-size BYTES] [--layers N]
 *
 * presets: llama2-7b, tinyllama-1.1b, llama-tiny (the llama_tiny fixture's shape),
 *          vit-mae-large, vit-mae-base, vit-mae-huge, vit-mae-tiny (the vit_mae_tiny fixture's shape)
 *
 * Writes `config.json` (HF field names, `torch_dtype` set) and `model.safetensors`, or shards
 * `model-0000k-of-0000n.safetensors` + `model.safetensors.index.json` when the weights exceed the
 * shard size (default 2 GiB). Each shard's header is written first, then the tensors one at a
 * time, each generated in chunks: memory stays at a few MB whatever the model size.
 *
 * Values follow HF's init kinds (normal(0, initializer_range) for embeddings and linear weights,
 * 1 for norm weights, 0 for biases; for the MAE the Xavier-uniform patch conv and the fixed
 * sin-cos position tables). For speed a normal draw is one of 65 536 seeded N(0, 1) samples
 * picked by a 16-bit random index, and a uniform one of 65 536 evenly spaced levels: right for
 * timing and memory, not meant to be statistically exact weights.
 */
import { closeSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { Mulberry32, f32ToBF16, f32ToF16, nonNegativeInt, oneOf, positiveInt, writeFileAtomic } from "@lm4lv/core";
import type { SafetensorsDtype } from "@lm4lv/core";
import { normalPair } from "@lm4lv/data";
import { llamaPreset, llamaWeightTable } from "@lm4lv/llm";
import type { LlamaConfig } from "@lm4lv/llm";
import { expectedWeights, sincosPositionEmbedding, vitMAEPreset } from "@lm4lv/mae";
import type { ViTMAEConfig } from "@lm4lv/mae";
import { isMain, parseCommandLine, runScript, usageText, UsageError } from "./options.js";

type OutDtype = "F16" | "BF16" | "F32";
const DTYPE_BYTES: Record<OutDtype, number> = { F16: 2, BF16: 2, F32: 4 };
const TORCH_DTYPE: Record<OutDtype, string> = { F16: "float16", BF16: "bfloat16", F32: "float32" };

/** How one tensor is filled. */
type Fill =
  | { kind: "normal"; std: number }
  | { kind: "uniform"; bound: number }
  | { kind: "const"; value: number }
  | { kind: "values"; values: () => Float32Array };

interface TensorPlan {
  name: string;
  shape: number[];
  fill: Fill;
}

interface ModelPlan {
  config: Record<string, unknown>;
  tensors: TensorPlan[];
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------
// Presets

const LLAMA_PRESET_NAMES = { "llama2-7b": "llama-2-7b", "tinyllama-1.1b": "tinyllama-1.1b", "llama-tiny": "tiny" } as const;
const MAE_PRESET_NAMES = { "vit-mae-large": "mae-large", "vit-mae-base": "mae-base", "vit-mae-huge": "mae-huge" } as const;
/** The vit_mae_tiny fixture's shape (32 px, patch 4, width 48). */
const MAE_TINY: Partial<ViTMAEConfig> = {
  image_size: 32, patch_size: 4, hidden_size: 48, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 96,
  decoder_hidden_size: 32, decoder_num_hidden_layers: 2, decoder_num_attention_heads: 4, decoder_intermediate_size: 64, initializer_range: 0.1,
};
/** The LM presets and the MAE presets random-hf writes. */
export const LLM_PRESETS = ["llama2-7b", "tinyllama-1.1b", "llama-tiny"] as const satisfies readonly (keyof typeof LLAMA_PRESET_NAMES)[];
export const MAE_PRESETS = ["vit-mae-large", "vit-mae-base", "vit-mae-huge", "vit-mae-tiny"] as const satisfies readonly (keyof typeof MAE_PRESET_NAMES | "vit-mae-tiny")[];
export const PRESETS = [...LLM_PRESETS, ...MAE_PRESETS] as const;

function llamaPlan(config: LlamaConfig): ModelPlan {
  const std = config.initializer_range;
  const tensors = llamaWeightTable(config).map((s): TensorPlan => ({
    name: s.name,
    shape: s.shape,
    fill: s.role === "norm" ? { kind: "const", value: 1 } : s.role === "bias" ? { kind: "const", value: 0 } : { kind: "normal", std },
  }));
  return { config: { architectures: ["LlamaForCausalLM"], model_type: "llama", ...config }, tensors };
}

function maePlan(config: ViTMAEConfig): ModelPlan {
  const grid = config.image_size / config.patch_size;
  const tensors = expectedWeights(config).map((s): TensorPlan => {
    const fill: Fill = (() => {
      switch (s.init) {
        case "normal": return { kind: "normal", std: config.initializer_range };
        case "zeros": return { kind: "const", value: 0 };
        case "ones": return { kind: "const", value: 1 };
        case "xavier": {
          const fanOut = s.shape[0];
          const fanIn = numel(s.shape) / fanOut;
          return { kind: "uniform", bound: Math.sqrt(6 / (fanIn + fanOut)) };
        }
        case "sincos-encoder": return { kind: "values", values: () => sincosPositionEmbedding(config.hidden_size, grid) };
        case "sincos-decoder": return { kind: "values", values: () => sincosPositionEmbedding(config.decoder_hidden_size, grid) };
      }
    })();
    return { name: s.name, shape: s.shape, fill };
  });
  return { config: { ...config }, tensors };
}

/** The plan of a preset, with `num_hidden_layers` overridden when `layers` is given. */
export function presetPlan(preset: string, layers?: number): ModelPlan {
  const over = layers === undefined ? {} : { num_hidden_layers: layers };
  if (preset in LLAMA_PRESET_NAMES) return llamaPlan(llamaPreset(LLAMA_PRESET_NAMES[preset as keyof typeof LLAMA_PRESET_NAMES], over));
  if (preset in MAE_PRESET_NAMES) return maePlan(vitMAEPreset(MAE_PRESET_NAMES[preset as keyof typeof MAE_PRESET_NAMES], over));
  if (preset === "vit-mae-tiny") return maePlan(vitMAEPreset("mae-base", { ...MAE_TINY, ...over }));
  throw new Error(`unknown preset "${preset}" (known: ${PRESETS.join(", ")})`);
}

// ---------------------------------------------------------------------------------------------
// Generation

/** core's Mulberry32 as raw 32-bit words (next() is word / 2^32, exactly). */
function uint32Stream(seed: number): () => number {
  const rng = new Mulberry32(seed >>> 0);
  return () => rng.next() * 4294967296;
}

const TABLE = 1 << 16;

/** 65 536 N(0, 1) draws (Box–Muller on the seeded stream). */
function normalTable(seed: number): Float32Array {
  const next = uint32Stream(seed ^ 0x5bd1e995);
  const out = new Float32Array(TABLE);
  const uniform = () => next() / 4294967296;
  for (let i = 0; i < TABLE; i += 2) [out[i], out[i + 1]] = normalPair(uniform);
  return out;
}

/** float32 values → the stored element bits (Uint16Array for F16/BF16, Uint32Array for F32). */
function encode(values: Float32Array, dtype: OutDtype): Uint16Array | Uint32Array {
  if (dtype === "F16") return f32ToF16(values);
  if (dtype === "BF16") return f32ToBF16(values);
  return new Uint32Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

const CHUNK = 1 << 22; // elements generated per write

/** Writes one tensor's bytes to `fd` chunk by chunk. */
function writeTensor(fd: number, plan: TensorPlan, dtype: OutDtype, normals: Float32Array, next: () => number): void {
  const n = numel(plan.shape);
  const f = plan.fill;
  if (f.kind === "values") {
    const v = f.values();
    if (v.length !== n) throw new Error(`${plan.name}: generated ${v.length} values, shape [${plan.shape}] needs ${n}`);
    writeAll(fd, bytesOf(encode(v, dtype)));
    return;
  }
  // a table of 65 536 stored values, picked by 16-bit indices (two per 32-bit draw)
  let table: Uint16Array | Uint32Array | undefined;
  if (f.kind === "normal") table = encode(normals.map((x) => x * f.std), dtype);
  else if (f.kind === "uniform") table = encode(Float32Array.from({ length: TABLE }, (_, i) => ((i + 0.5) / TABLE * 2 - 1) * f.bound), dtype);
  const constant = f.kind === "const" ? encode(Float32Array.of(f.value), dtype)[0] : 0;
  const chunk = dtype === "F32" ? new Uint32Array(Math.min(CHUNK, n)) : new Uint16Array(Math.min(CHUNK, n));
  for (let done = 0; done < n; done += chunk.length) {
    const len = Math.min(chunk.length, n - done);
    if (!table) chunk.fill(constant);
    else {
      for (let i = 0; i < len; i += 2) {
        const r = next();
        chunk[i] = table[r & 0xffff];
        if (i + 1 < len) chunk[i + 1] = table[r >>> 16];
      }
    }
    writeAll(fd, bytesOf(chunk.subarray(0, len)));
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
}

// ---------------------------------------------------------------------------------------------
// Folder writer

export interface WriteOptions {
  seed?: number;
  dtype?: OutDtype;
  /** Largest shard in bytes before a new one starts (default 2 GiB). */
  shardSize?: number;
}

export interface WriteResult {
  files: string[];
  bytes: number;
  tensors: number;
}

/** Groups tensors in order into shards of at most `shardSize` bytes (a bigger tensor gets its own). */
function shardsOf(tensors: TensorPlan[], bytesPer: number, shardSize: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const b = numel(t.shape) * bytesPer;
    if (size > 0 && size + b > shardSize) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += b;
  }
  return shards;
}

/** Writes a safetensors file: header (offsets from the plan), then each tensor, streamed. */
function writeShard(path: string, tensors: TensorPlan[], dtype: OutDtype, normals: Float32Array, next: () => number): number {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    const len = numel(t.shape) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype: dtype as SafetensorsDtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hbytes = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hbytes.length));
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    writeAll(fd, lenBuf);
    writeAll(fd, hbytes);
    for (const t of tensors) writeTensor(fd, t, dtype, normals, next);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return 8 + hbytes.length + offset;
}

/** Writes `config.json` and the safetensors file(s) of `plan` into `outDir`. */
export function writeRandomHF(plan: ModelPlan, outDir: string, opts: WriteOptions = {}): WriteResult {
  const dtype = opts.dtype ?? "F16";
  if (!(dtype in DTYPE_BYTES)) throw new Error(`dtype: expected F16, BF16 or F32, got "${dtype}"`);
  const seed = opts.seed ?? 0;
  const shardSize = opts.shardSize ?? 2 ** 31;
  if (!(shardSize > 0)) throw new RangeError(`shardSize must be positive, got ${shardSize}`);
  mkdirSync(outDir, { recursive: true });
  const normals = normalTable(seed);
  const next = uint32Stream(seed);
  const shards = shardsOf(plan.tensors, DTYPE_BYTES[dtype], shardSize);
  const files: string[] = [];
  let bytes = 0;
  if (shards.length === 1) {
    files.push("model.safetensors");
    bytes += writeShard(join(outDir, files[0]), shards[0], dtype, normals, next);
  } else {
    const weightMap: Record<string, string> = {};
    let total = 0;
    shards.forEach((tensors, i) => {
      const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
      files.push(file);
      bytes += writeShard(join(outDir, file), tensors, dtype, normals, next);
      for (const t of tensors) {
        weightMap[t.name] = file;
        total += numel(t.shape) * DTYPE_BYTES[dtype];
      }
    });
    writeFileAtomic(join(outDir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n");
  }
  writeFileAtomic(join(outDir, "config.json"), JSON.stringify({ ...plan.config, torch_dtype: TORCH_DTYPE[dtype] }, null, 2) + "\n");
  return { files, bytes, tensors: plan.tensors.length };
}

// ---------------------------------------------------------------------------------------------
// Command line

/** The options of random-hf: omitted ones take writeRandomHF's defaults. */
export const RANDOM_HF_OPTIONS = z.object({
  seed: nonNegativeInt().optional().describe("seed of the random values"),
  dtype: z.preprocess((v) => (typeof v === "string" ? v.toUpperCase() : v), oneOf(["F16", "BF16", "F32"])).default("F16").describe("stored dtype"),
  shardSize: positiveInt().optional().describe("bytes per safetensors shard"),
  layers: positiveInt().optional().describe("num_hidden_layers instead of the preset's"),
});

export type RandomHfOptions = z.output<typeof RANDOM_HF_OPTIONS>;

const USAGE = `${usageText("usage: node tools/bench/dist/random-hf.js <preset> <out-dir> [options]", RANDOM_HF_OPTIONS)}
presets: ${PRESETS.join(", ")}`;

/** argv → the preset, the output folder and typed options (undefined for --help); problems name the flag. */
export function parseRandomHfArgs(argv: string[]): { preset: (typeof PRESETS)[number]; out: string; options: RandomHfOptions } | undefined {
  const { options, positionals, help } = parseCommandLine(argv, RANDOM_HF_OPTIONS, { positionals: "<preset> <out-dir>" });
  if (help) return undefined;
  const [preset, out] = positionals;
  if (!(PRESETS as readonly string[]).includes(preset)) throw new UsageError(`<preset>: unknown preset "${preset}" (known: ${PRESETS.join(", ")})`);
  return { preset: preset as (typeof PRESETS)[number], out, options };
}

function main(): void {
  const args = parseRandomHfArgs(process.argv.slice(2));
  if (!args) return console.log(USAGE);
  const { preset, out, options: o } = args;
  const plan = presetPlan(preset, o.layers);
  const t0 = performance.now();
  const r = writeRandomHF(plan, out, { seed: o.seed, dtype: o.dtype, shardSize: o.shardSize });
  const s = (performance.now() - t0) / 1000;
  console.log(`${preset}: ${r.tensors} tensors, ${(r.bytes / 2 ** 30).toFixed(2)} GiB ${o.dtype} in ${r.files.length} file(s), ${s.toFixed(1)} s → ${out}`);
}

if (isMain("random-hf")) runScript(main, USAGE);
