/**
 * Export to a folder of ONNX files + `manifest.json`, cached by a hash of the source weights.
 *
 *   outDir/
 *     vit_encoder.onnx  vit_decoder.onnx          (mae given)
 *     llama_step.onnx   llama_embed.onnx          (llm given; with adapters the step graph is the
 *                                                  folded LM4LV one: one graph, one copy of the LM
 *                                                  weights, for prefill, decode and the visual loop)
 *     *.onnx.data                                 (external data, when big)
 *     manifest.json                               {format, version, sourceHash, files, shapes, weights}
 *     fp16/  int8/  int4/  int4-b64/  int4-b128/  the same, per weight setting (ensureExported)
 *
 * `ensureExported` returns the cached folder when the manifest's hash equals the hash of the
 * current sources (weights, configs, export settings) and every listed file exists; else it
 * exports again. Hashing reads every byte of the weights (~13 s for a 7B model), so when the
 * sources are folders the manifest also keeps their files' names, sizes, modification times and
 * inodes (`sourceStat`): while those are unchanged the content hash is not recomputed
 * (`verify: "content"` always recomputes it). Each weight setting has its own folder: fp32 (the default) in
 * `outDir` itself, the others in `outDir/<format>`, and int4 with blocks other than 32 in
 * `outDir/int4-b<size>` (`exportDirFor`), so switching settings never overwrites another.
 *
 * An LM given as a folder is streamed: its safetensors (single or sharded; F32/F16/BF16) are
 * read tensor by tensor while the graphs are written, never as a whole model in float32.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { readJsonFile, writeFileAtomic } from "@lm4lv/core";
import { ViTMAE, expectedWeights } from "@lm4lv/mae";
import { llamaWeightTable } from "@lm4lv/llm";
import type { LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LVAdapters, loadAdapters, readCheckpointInfo } from "@lm4lv/adapters";
import type { OnnxGraph } from "./graph.js";
import { buildViTDecoder, buildViTEncoder } from "./vit-export.js";
import { buildEmbed, buildLlamaStep, headFormat } from "./llama-export.js";
import type { LlamaExportOptions } from "./llama-export.js";
import { DEFAULT_ACCURACY_LEVEL, INT4_BLOCK_SIZE, WEIGHT_FORMATS } from "./layers.js";
import type { WeightFormat } from "./layers.js";
import { INT4_BLOCK_SIZES, weightSettingName, type Int4BlockSize } from "./available.js";
import { openLlamaSource, sourceFromModel } from "./llama-source.js";
import type { LlamaWeightSource } from "./llama-source.js";
import { OrtCausalLM, OrtVisionModel, OrtVisualStep } from "./runtime.js";
import type { OrtLMInfo, OrtVisionInfo } from "./runtime.js";
import { OrtSession } from "./session.js";
import type { OrtSessionOptions } from "./session.js";

export const MANIFEST_FILE = "manifest.json";
export const MANIFEST_FORMAT = "lm4lv-onnx";
/** Bumped whenever the graphs change, so old exports are rebuilt. */
export const EXPORTER_VERSION = 2;

/** What to export: loaded models, or folders (HF model folders; an adapter checkpoint folder). */
export interface ExportSource {
  mae?: ViTMAE | string;
  llm?: LlamaForCausalLM | string;
  /** Needs `mae` and `llm` (for the sizes): the step graph is exported with the adapters folded in. */
  adapters?: LM4LVAdapters | string;
}

export interface ExportOptions {
  /** Initializers above this many bytes go to `<file>.data` (default: only when a model is over ~1.8 GiB). */
  externalAbove?: number;
  /**
   * Storage of the LM's linear layers (default fp32; see WeightFormat): fp16 halves the files,
   * int8 / int4 run MatMulNBits. The MAE and the adapters stay float32.
   */
  quantize?: WeightFormat;
  /** MatMulNBits accuracy_level for int8 / int4 (default 4). */
  accuracyLevel?: number;
  /**
   * With `quantize: "int4"`: weights per scale and zero point along K, 32 (default), 64 or 128.
   * Larger blocks store fewer scales (smaller files and memory) at a larger quantization error;
   * a layer whose K is not a multiple has a partial last block. Other formats reject it.
   */
  int4BlockSize?: Int4BlockSize;
  /**
   * How `ensureExported` decides that a cached export is current: "stat" (default) trusts the
   * manifest's `sourceStat` (names, sizes, mtimes, inodes of the source folders' files) when it
   * matches, and hashes the content only otherwise; "content" always hashes the content.
   */
  verify?: "stat" | "content";
}

/** How the exported LM stores its weights (manifest field `weights`). */
export interface ManifestWeights {
  format: WeightFormat;
  /** Format of the LM head (int4 keeps an int8 head). */
  lmHead: WeightFormat;
  /** Embedding table element type. */
  embedding: "float32" | "float16";
  int4BlockSize?: number;
  accuracyLevel?: number;
}

export interface OnnxManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  exporterVersion: number;
  /** sha256 over the source weights, configs and export options. */
  sourceHash: string;
  /** sha256 over the source folders' file names, sizes, mtimes and inodes (+ export options), when the sources were folders. */
  sourceStat?: string;
  createdAt: string;
  /** `visualStep`: a separate visual step graph, in exports of version 1 only (since 2 `llmStep` serves both). */
  files: { encoder?: string; decoder?: string; llmStep?: string; embed?: string; visualStep?: string };
  vision?: OrtVisionInfo & { numTokens: number; config: Record<string, unknown> };
  llm?: OrtLMInfo & { config: Record<string, unknown> };
  /** Present when `llmStep` is the folded LM4LV step graph (features in, next_feature out). */
  visualStep?: { visionHidden: number };
  /** How the LM's weights are stored (absent in exports older than the option: fp32). */
  weights?: ManifestWeights;
}

/** Checks a `quantize` value (e.g. from a command line); throws naming the accepted ones. */
export function parseWeightFormat(value: string, what = "quantize"): WeightFormat {
  if (!(WEIGHT_FORMATS as readonly string[]).includes(value)) throw new Error(`${what}: expected one of ${WEIGHT_FORMATS.join(", ")}, got "${value}"`);
  return value as WeightFormat;
}

/** Checks an int4 block size (e.g. from a command line); throws naming the option and the accepted values. */
export function parseInt4BlockSize(value: unknown, what = "int4BlockSize"): Int4BlockSize {
  if (!(INT4_BLOCK_SIZES as readonly unknown[]).includes(value)) throw new Error(`${what}: expected one of ${INT4_BLOCK_SIZES.join(", ")}, got ${JSON.stringify(value)}`);
  return value as Int4BlockSize;
}

/**
 * The weight setting of export options, checked: the format and the int4 block size (the default
 * 32 for the other formats, which reject any `int4BlockSize`).
 */
export function weightSetting(opts: Pick<ExportOptions, "quantize" | "int4BlockSize"> = {}): { format: WeightFormat; int4BlockSize: Int4BlockSize } {
  const format = parseWeightFormat(opts.quantize ?? "fp32");
  if (opts.int4BlockSize === undefined) return { format, int4BlockSize: INT4_BLOCK_SIZE };
  const int4BlockSize = parseInt4BlockSize(opts.int4BlockSize);
  if (format !== "int4") throw new Error(`int4BlockSize: only with quantize "int4", got quantize "${format}"`);
  return { format, int4BlockSize };
}

/**
 * The folder `ensureExported` uses for a weight setting: `base` for fp32, `base/<format>` for
 * the others, `base/int4-b<size>` for int4 blocks other than 32 (`base/int4` stays block 32).
 */
export function exportDirFor(base: string, quantize: WeightFormat = "fp32", int4BlockSize?: Int4BlockSize): string {
  const { format, int4BlockSize: bs } = weightSetting({ quantize, int4BlockSize });
  return format === "fp32" ? base : join(base, weightSettingName(format, bs));
}

function llamaOptions(opts: ExportOptions): LlamaExportOptions {
  const { format, int4BlockSize } = weightSetting(opts);
  return { weights: format, accuracyLevel: opts.accuracyLevel, int4BlockSize };
}

// ---------------------------------------------------------------------------------------------
// Source resolution and hashing

/**
 * A folder given as the whole source: an HF model folder (its `model_type` says which), or a
 * folder with `mae/`, `llm/` and optionally `adapters/` inside.
 */
export function sourceFromDir(dir: string): ExportSource {
  if (existsSync(join(dir, "lm4lv.json"))) {
    // an LM4LV checkpoint (lm4lv.json validated): its models (paths relative to the checkpoint) + its adapters
    const info = readCheckpointInfo(dir);
    const at = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
    return { mae: at(info.visionModel), llm: at(info.llm), adapters: dir };
  }
  if (existsSync(join(dir, "config.json"))) {
    const { json } = readJsonFile(join(dir, "config.json"));
    if (json.model_type === "vit_mae") return { mae: dir };
    if (json.model_type === "llama") return { llm: dir };
    throw new Error(`${dir}/config.json: model_type ${JSON.stringify(json.model_type)} has no ONNX export (expected "vit_mae" or "llama")`);
  }
  const src: ExportSource = {};
  if (existsSync(join(dir, "mae"))) src.mae = join(dir, "mae");
  if (existsSync(join(dir, "llm"))) src.llm = join(dir, "llm");
  if (existsSync(join(dir, "adapters"))) src.adapters = join(dir, "adapters");
  if (!src.mae && !src.llm) throw new Error(`${dir}: neither a model folder (config.json) nor a folder with mae/ or llm/ inside`);
  return src;
}

function hashFile(h: ReturnType<typeof createHash>, path: string): void {
  const fd = openSync(path, "r");
  const buf = Buffer.allocUnsafe(1 << 22);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** Hashes the weight/config files of a folder (names, sizes, contents). */
/** The files of a model folder that its hash covers: weights and configs, sorted. */
function hashedFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".safetensors") || f.endsWith(".json")).sort();
}

function hashDir(h: ReturnType<typeof createHash>, dir: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such folder`);
  for (const f of hashedFiles(dir)) {
    h.update(`${f}:${statSync(join(dir, f)).size}\n`);
    hashFile(h, join(dir, f));
  }
}

/** A named tensor's shape and values (read when hashed). */
type HashedTensor = [name: string, read: () => { shape: readonly number[]; data: Float32Array }];

function hashTensors(h: ReturnType<typeof createHash>, named: HashedTensor[]): void {
  for (const [name, read] of named) {
    const { shape, data: d } = read();
    h.update(`${name}:${shape}\n`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
}

/** A model's parameters by HF name, in checkpoint order, read one at a time (`readParameter`). */
function modelTensors(model: { readParameter(name: string): { shape: number[]; data: Float32Array } }, names: string[]): HashedTensor[] {
  return names.map((name) => [name, () => model.readParameter(name)]);
}

/**
 * A cheap fingerprint of folder sources: sha256 over the export settings and, per folder, the
 * names, sizes, modification times and inodes of its weight/config files (undefined when a
 * source is a loaded model). Equal fingerprints mean `sourceHash` would read the same files.
 */
export function sourceStat(src: ExportSource, opts: ExportOptions = {}): string | undefined {
  const folders = [["mae", src.mae], ["llm", src.llm], ["adapters", src.adapters]] as const;
  if (folders.some(([, p]) => p !== undefined && typeof p !== "string")) return undefined;
  const h = createHash("sha256");
  const { format, int4BlockSize } = weightSetting(opts);
  // block 32 adds nothing, so the fingerprints of exports made before the option stay valid
  const blocks = int4BlockSize === INT4_BLOCK_SIZE ? {} : { int4BlockSize };
  h.update(JSON.stringify({ exporter: EXPORTER_VERSION, externalAbove: opts.externalAbove ?? null, quantize: format, accuracyLevel: opts.accuracyLevel ?? null, ...blocks }));
  for (const [tag, dir] of folders) {
    if (typeof dir !== "string") continue;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
    h.update(`\n[${tag}] ${resolve(dir)}\n`);
    for (const f of hashedFiles(dir)) {
      const s = statSync(join(dir, f), { bigint: true });
      h.update(`${f}:${s.size}:${s.mtimeNs}:${s.ino}\n`);
    }
  }
  return h.digest("hex");
}

/** sha256 of everything an export depends on. */
export function sourceHash(src: ExportSource, opts: ExportOptions = {}): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ exporter: EXPORTER_VERSION, externalAbove: opts.externalAbove ?? null }));
  // fp32 hashes as before the option existed, so older fp32 exports stay valid; the other formats
  // always hashed a block size of 32 (the default), so only another block size changes their hash
  const { format, int4BlockSize } = weightSetting(opts);
  if (format !== "fp32") h.update(JSON.stringify({ quantize: format, int4BlockSize, accuracyLevel: opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL }));
  const part = (tag: string, v: unknown, tensors: () => HashedTensor[], config: () => unknown) => {
    if (v === undefined) return;
    h.update(`\n[${tag}]\n`);
    if (typeof v === "string") hashDir(h, v);
    else {
      h.update(JSON.stringify(config()));
      hashTensors(h, tensors());
    }
  };
  const mae = src.mae as ViTMAE;
  const llm = src.llm as LlamaForCausalLM;
  part("mae", src.mae, () => modelTensors(mae, expectedWeights(mae.config).map((s) => s.name)), () => mae.config);
  part("llm", src.llm, () => modelTensors(llm, llamaWeightTable(llm.config).map((s) => s.name)), () => llm.config);
  part("adapters", src.adapters, () => Object.entries((src.adapters as LM4LVAdapters).namedVariables()).map(([n, v]): HashedTensor => [n, () => ({ shape: v.shape, data: v.dataSync() as Float32Array })]), () => null);
  return h.digest("hex");
}

// ---------------------------------------------------------------------------------------------
// Export

function save(g: OnnxGraph, outDir: string, file: string, opts: ExportOptions): string {
  g.save(join(outDir, file), { externalAbove: opts.externalAbove });
  return file;
}

/**
 * Builds and writes every graph the source allows, then the manifest. An MAE or adapters folder
 * is loaded (tfjs); an LM folder is read lazily, tensor by tensor, as the graphs are written.
 */
export function exportOnnx(source: ExportSource | string, outDir: string, opts: ExportOptions = {}): OnnxManifest {
  return writeExport(typeof source === "string" ? sourceFromDir(source) : source, outDir, opts);
}

/** `exportOnnx` with the source's content hash when the caller has computed it already (one pass over the files, not two). */
function writeExport(src: ExportSource, outDir: string, opts: ExportOptions, knownHash?: string): OnnxManifest {
  if (src.adapters && (!src.mae || !src.llm)) throw new Error("exportOnnx: adapters need both mae and llm (the visual step graph is built from all three)");
  const llamaOpts = llamaOptions(opts);
  const stat = sourceStat(src, opts);
  const hash = knownHash ?? sourceHash(src, opts);
  const owned: { dispose(): void }[] = [];
  let llm: LlamaWeightSource | undefined;
  try {
    const mae = typeof src.mae === "string" ? ViTMAE.fromPretrained(src.mae) : src.mae;
    if (typeof src.mae === "string") owned.push(mae!);
    if (src.llm !== undefined) llm = typeof src.llm === "string" ? openLlamaSource(src.llm) : sourceFromModel(src.llm);
    let adapters: LM4LVAdapters | undefined;
    if (typeof src.adapters === "string") {
      if (readCheckpointInfo(src.adapters).lora) throw new Error(`${src.adapters}: the checkpoint holds LoRA matrices, which the ONNX export does not support yet`);
      adapters = loadAdapters(src.adapters, { visionHidden: mae!.hiddenSize, llmHidden: llm!.config.hidden_size }).adapters;
      owned.push(adapters);
    } else adapters = src.adapters;

    const manifest: OnnxManifest = { format: MANIFEST_FORMAT, version: 1, exporterVersion: EXPORTER_VERSION, sourceHash: hash, ...(stat ? { sourceStat: stat } : {}), createdAt: new Date().toISOString(), files: {} };
    if (mae) {
      manifest.files.encoder = save(buildViTEncoder(mae), outDir, "vit_encoder.onnx", opts);
      manifest.files.decoder = save(buildViTDecoder(mae), outDir, "vit_decoder.onnx", opts);
      manifest.vision = { imageSize: mae.imageSize, patchSize: mae.patchSize, hiddenSize: mae.hiddenSize, numTokens: mae.numTokens, config: { ...mae.config } };
    }
    if (llm) {
      // with adapters, one folded graph serves the LM and the visual loop (one copy of the weights)
      manifest.files.llmStep = save(buildLlamaStep(llm, llamaOpts, adapters), outDir, "llama_step.onnx", opts);
      if (adapters) manifest.visualStep = { visionHidden: adapters.visionHidden };
      manifest.files.embed = save(buildEmbed(llm, llamaOpts), outDir, "llama_embed.onnx", opts);
      const c = llm.config;
      manifest.llm = { hiddenSize: c.hidden_size, vocabSize: c.vocab_size, numLayers: c.num_hidden_layers, numKeyValueHeads: c.num_key_value_heads, headDim: c.head_dim, config: { ...c } };
      const format = llamaOpts.weights!;
      manifest.weights = { format, lmHead: headFormat(format), embedding: format === "fp32" ? "float32" : "float16" };
      if (format === "int4") manifest.weights.int4BlockSize = llamaOpts.int4BlockSize;
      if (format === "int8" || format === "int4") manifest.weights.accuracyLevel = opts.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL;
    }
    writeFileAtomic(join(outDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
    return manifest;
  } finally {
    llm?.close();
    for (const o of owned) o.dispose();
  }
}

/** Reads and checks `outDir/manifest.json`. */
export function readManifest(outDir: string): OnnxManifest {
  const { path, json } = readJsonFile(join(outDir, MANIFEST_FILE));
  if (json.format !== MANIFEST_FORMAT) throw new Error(`${path}: field "format" is ${JSON.stringify(json.format)}, expected "${MANIFEST_FORMAT}"`);
  if (typeof json.sourceHash !== "string" || typeof json.files !== "object" || json.files === null) throw new Error(`${path}: fields "sourceHash" and "files" are required`);
  return json as unknown as OnnxManifest;
}

export interface EnsureResult {
  /** The export folder: `outDir` for fp32, `outDir/<format>` for another weight format (`exportDirFor`). */
  dir: string;
  manifest: OnnxManifest;
  /** Absolute paths of the model files, by role. */
  paths: OnnxManifest["files"];
  /** True when the export ran now (no cache, or the sources changed). */
  exported: boolean;
}

function absolute(outDir: string, files: OnnxManifest["files"]): OnnxManifest["files"] {
  return Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(outDir, f as string)]));
}

/**
 * The cached export when its hash matches the sources, else a fresh export; in `outDir` for fp32
 * weights, in `outDir/<format>` for the others and `outDir/int4-b<size>` for int4 blocks other
 * than 32 (see `exportDirFor`).
 */
export function ensureExported(source: ExportSource | string, baseDir: string, opts: ExportOptions = {}): EnsureResult {
  const src = typeof source === "string" ? sourceFromDir(source) : source;
  const outDir = exportDirFor(baseDir, opts.quantize, opts.int4BlockSize);
  let hash: string | undefined; // computed at most once: a stale export passes it on to writeExport
  if (existsSync(join(outDir, MANIFEST_FILE))) {
    try {
      const m = readManifest(outDir);
      const complete = Object.values(m.files).every((f) => existsSync(join(outDir, f as string)));
      if (complete && m.exporterVersion === EXPORTER_VERSION) {
        const stat = sourceStat(src, opts);
        if ((opts.verify ?? "stat") === "stat" && stat !== undefined && m.sourceStat === stat) {
          return { dir: outDir, manifest: m, paths: absolute(outDir, m.files), exported: false };
        }
        hash = sourceHash(src, opts);
        if (m.sourceHash === hash) {
          // same content (files copied or touched): remember the new fingerprint
          if (stat !== undefined && m.sourceStat !== stat) {
            m.sourceStat = stat;
            writeFileAtomic(join(outDir, MANIFEST_FILE), JSON.stringify(m, null, 2) + "\n");
          }
          return { dir: outDir, manifest: m, paths: absolute(outDir, m.files), exported: false };
        }
      }
    } catch {
      // unreadable manifest: export again
    }
  }
  const manifest = writeExport(src, outDir, opts, hash);
  return { dir: outDir, manifest, paths: absolute(outDir, manifest.files), exported: true };
}

export interface OrtModels {
  manifest: OnnxManifest;
  vision?: OrtVisionModel;
  lm?: OrtCausalLM;
  visualStep?: OrtVisualStep;
  dispose(): void;
}

/**
 * Opens every model of an export folder in ONNX Runtime. The LM and the visual step share one
 * session of the step graph (one copy of the LM weights); the embedding graph opens at the first
 * `lm.embed`. `dispose()` closes everything.
 */
export async function loadOrtModels(outDir: string, opts: OrtSessionOptions = {}): Promise<OrtModels> {
  const m = readManifest(outDir);
  const p = absolute(outDir, m.files);
  const sessions: OrtSession[] = [];
  const models: OrtModels = {
    manifest: m,
    dispose() {
      models.vision?.dispose();
      models.lm?.dispose();
      models.visualStep?.dispose();
      for (const s of sessions) s.dispose();
    },
  };
  try {
    if (m.vision && p.encoder && p.decoder) models.vision = await OrtVisionModel.create(p.encoder, p.decoder, m.vision, opts);
    if (m.llm && p.llmStep && p.embed) {
      const step = await OrtSession.create(p.llmStep, opts);
      sessions.push(step);
      const folded = m.visualStep && !p.visualStep; // version ≥ 2: the step graph is the folded one
      models.lm = new OrtCausalLM(step, p.embed, { ...m.llm, visionHidden: folded ? m.visualStep!.visionHidden : undefined }, opts);
      if (folded) models.visualStep = new OrtVisualStep(step, { ...m.llm, visionHidden: m.visualStep!.visionHidden });
    }
    if (m.llm && m.visualStep && p.visualStep) models.visualStep = await OrtVisualStep.create(p.visualStep, { ...m.llm, visionHidden: m.visualStep.visionHidden }, opts);
  } catch (e) {
    models.dispose();
    throw e;
  }
  return models;
}
