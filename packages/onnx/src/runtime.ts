/**
 * ONNX Runtime models behind core's interfaces, tf tensors in and out, so the sampler and the
 * apps run unchanged:
 *
 *   OrtVisionModel   VisionModel  (encoder + decoder graphs)
 *   OrtCausalLM      CausalLM     (step graph + embedding graph), cache = OrtKVCache
 *   OrtVisualStep    the folded LM4LV step: one run per generated visual token
 *
 * Each opens with an async `create` (onnxruntime-node's public `InferenceSession.create`) and
 * runs asynchronously, as core's seams do. `OrtCausalLM` and `OrtVisualStep` may share one
 * `OrtSession` of the folded step graph (see `buildVisualStep`), so prefill, decode and the visual
 * loop read one copy of the LM weights; a model given a session does not dispose it (its owner
 * does), one given a path owns its session. The embedding session opens at the first `embed`.
 *
 * Tensors cross the boundary by copy (tf `dataSync()` → ort.Tensor, ort output → `tf.tensor`).
 * The KV cache stays in ORT tensors between steps.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import type { CausalLM, CausalLMInput, CausalLMOutput, KVCache, VisionModel } from "@lm4lv/core";
import { OrtSession } from "./session.js";
import type { OrtSessionOptions } from "./session.js";
import { NUM_LOGITS, pastKeyName, pastValueName, presentKeyName, presentValueName } from "./llama-export.js";

/** A float32 tf tensor as an ORT tensor (copied). */
export function toOrt(t: tf.Tensor): ort.Tensor {
  return new ort.Tensor("float32", Float32Array.from(t.dataSync() as Float32Array), [...t.shape]);
}

/** An ORT float32 tensor as a tf tensor. */
export function fromOrt<T extends tf.Tensor>(t: ort.Tensor): T {
  return tf.tensor(t.data as Float32Array, [...t.dims], "float32") as T;
}

function int64(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor("int64", data, dims);
}

const emptyFloat = (dims: number[]) => new ort.Tensor("float32", new Float32Array(0), dims);

// ---------------------------------------------------------------------------------------------
// Vision

export interface OrtVisionInfo {
  imageSize: number;
  patchSize: number;
  hiddenSize: number;
}

export class OrtVisionModel implements VisionModel {
  readonly imageSize: number;
  readonly patchSize: number;
  readonly hiddenSize: number;
  readonly numTokens: number;

  private encoder?: OrtSession;
  private readonly encoderPath: string;

  /** Takes ownership of the two sessions (see `create`); `opts` reopen the encoder after `releaseEncoder`. */
  constructor(encoder: OrtSession, private readonly decoder: OrtSession, info: OrtVisionInfo, private readonly opts: OrtSessionOptions = {}) {
    this.encoder = encoder;
    this.encoderPath = encoder.path;
    this.imageSize = info.imageSize;
    this.patchSize = info.patchSize;
    this.hiddenSize = info.hiddenSize;
    this.numTokens = 1 + (info.imageSize / info.patchSize) ** 2;
  }

  /** Opens the encoder and decoder graphs. */
  static async create(encoderPath: string, decoderPath: string, info: OrtVisionInfo, opts: OrtSessionOptions = {}): Promise<OrtVisionModel> {
    const encoder = await OrtSession.create(encoderPath, opts);
    try {
      return new OrtVisionModel(encoder, await OrtSession.create(decoderPath, opts), info, opts);
    } catch (e) {
      encoder.dispose();
      throw e;
    }
  }

  /** `[B, 3, S, S]` normalised → `[B, 1+N, D]`. */
  async encode(pixelValues: tf.Tensor4D): Promise<tf.Tensor3D> {
    const [, c, h, w] = pixelValues.shape;
    if (pixelValues.rank !== 4 || c !== 3 || h !== this.imageSize || w !== this.imageSize) {
      throw new Error(`OrtVisionModel.encode: pixel values have shape [${pixelValues.shape}], expected [B, 3, ${this.imageSize}, ${this.imageSize}]`);
    }
    this.encoder ??= await OrtSession.create(this.encoderPath, this.opts);
    const out = await this.encoder.run({ pixel_values: toOrt(pixelValues) });
    return fromOrt<tf.Tensor3D>(out.features);
  }

  /**
   * Frees the encoder's session until the next `encode` reopens it. The LM4LV loop encodes the
   * image once, before the LM runs: releasing the encoder then keeps its weights (1.2 GB for an
   * fp32 MAE-Large) out of the loop's peak memory (docs/scale.md).
   */
  /** Whether the encoder's session is open (false after `releaseEncoder`, until the next `encode`). */
  get encoderOpen(): boolean {
    return this.encoder !== undefined;
  }

  async releaseEncoder(): Promise<void> {
    const e = this.encoder;
    this.encoder = undefined;
    await e?.release();
  }

  /** `[B, 1+N, D]` → `[B, 3, S, S]` normalised. */
  async decode(features: tf.Tensor3D): Promise<tf.Tensor4D> {
    if (features.rank !== 3 || features.shape[1] !== this.numTokens || features.shape[2] !== this.hiddenSize) {
      throw new Error(`OrtVisionModel.decode: features have shape [${features.shape}], expected [B, ${this.numTokens}, ${this.hiddenSize}]`);
    }
    const out = await this.decoder.run({ features: toOrt(features) });
    return fromOrt<tf.Tensor4D>(out.pixels);
  }

  dispose(): void {
    this.encoder?.dispose();
    this.encoder = undefined;
    this.decoder.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Language model

export interface OrtLMInfo {
  hiddenSize: number;
  vocabSize: number;
  numLayers: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Width of a visual feature, when the step graph is the folded LM4LV one (it has a `features` input). */
  visionHidden?: number;
}

/** A session given (shared, not disposed here) or a model path (opened and owned). */
async function openSession(model: string | OrtSession, opts: OrtSessionOptions): Promise<{ session: OrtSession; owned: boolean }> {
  return typeof model === "string" ? { session: await OrtSession.create(model, opts), owned: true } : { session: model, owned: false };
}

/**
 * Above this many bytes of K/V, replacing the cache runs a full garbage collection: every step's
 * present K/V arrive in new JS buffers (onnxruntime-node copies outputs), and V8 frees the previous
 * step's only when it collects — at 7B and 433 positions (0.42 GiB per copy) one late copy is
 * 0.42 GiB of peak memory (docs/scale.md). Smaller caches are left to V8.
 */
export const KV_GC_BYTES = 256 * 2 ** 20;
let fullGc: (() => void) | undefined;
function collectGarbage(): void {
  if (!fullGc) {
    if (typeof globalThis.gc === "function") fullGc = globalThis.gc as () => void;
    else {
      setFlagsFromString("--expose-gc");
      fullGc = runInNewContext("gc") as () => void;
    }
  }
  fullGc();
}

/** Per-layer K (after RoPE) and V as ORT tensors `[B, kv, P, hs]`. */
export class OrtKVCache implements KVCache {
  keys: ort.Tensor[] = [];
  values: ort.Tensor[] = [];
  private disposed = false;

  constructor(readonly numLayers: number) {}

  get length(): number {
    return this.keys[0]?.dims[2] ?? 0;
  }

  get batchSize(): number | undefined {
    return this.keys[0]?.dims[0];
  }

  /** Feeds for the past of a step graph (empty `[B, kv, 0, hs]` tensors while the cache is empty). */
  feeds(batch: number, kv: number, hs: number): Record<string, ort.Tensor> {
    this.check();
    const f: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.numLayers; l++) {
      f[pastKeyName(l)] = this.keys[l] ?? emptyFloat([batch, kv, 0, hs]);
      f[pastValueName(l)] = this.values[l] ?? emptyFloat([batch, kv, 0, hs]);
    }
    return f;
  }

  /** Takes the present K/V of a step graph's outputs. */
  update(outputs: Record<string, ort.Tensor>): void {
    this.check();
    let bytes = 0;
    for (let l = 0; l < this.numLayers; l++) {
      const k = outputs[presentKeyName(l)];
      const v = outputs[presentValueName(l)];
      if (!k || !v) throw new Error(`OrtKVCache: the step graph returned no ${presentKeyName(l)} / ${presentValueName(l)}`);
      this.keys[l] = k;
      this.values[l] = v;
      bytes += (k.data as Float32Array).byteLength + (v.data as Float32Array).byteLength;
    }
    if (bytes > KV_GC_BYTES) collectGarbage(); // the previous step's K/V (see KV_GC_BYTES)
  }

  dispose(): void {
    this.keys = [];
    this.values = [];
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error("this OrtKVCache was disposed");
  }
}

/**
 * Positions when the caller gives none (as @lm4lv/llm): with a mask, cumsum(mask) − 1 with padded
 * slots set to 1, last T columns; without, P .. P+T−1.
 */
function defaultPositions(B: number, T: number, P: number, mask?: Int32Array): number[] {
  const out: number[] = [];
  const S = P + T;
  for (let b = 0; b < B; b++) {
    let sum = 0;
    for (let s = 0; s < S; s++) {
      const m = mask ? mask[b * S + s] : 1;
      sum += m > 0 ? 1 : 0;
      if (s >= P) out.push(mask ? (m > 0 ? sum - 1 : 1) : s);
    }
  }
  return out;
}

export class OrtCausalLM implements CausalLM {
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly numLayers: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  private embedding?: Promise<OrtSession>;
  /** Feeds of the folded step graph's visual input when it serves as the LM (no features). */
  private readonly featureWidth?: number;

  /**
   * `step`: the open step-graph session (disposed by this model when `ownsStep`); `embedPath`: the
   * embedding graph, opened at the first `embed`. `create` opens the step graph from a path.
   */
  constructor(
    private readonly step: OrtSession,
    private readonly embedPath: string,
    info: OrtLMInfo,
    private readonly opts: OrtSessionOptions = {},
    private readonly ownsStep = false,
  ) {
    this.hiddenSize = info.hiddenSize;
    this.vocabSize = info.vocabSize;
    this.numLayers = info.numLayers;
    this.numKeyValueHeads = info.numKeyValueHeads;
    this.headDim = info.headDim;
    if (step.inputNames.includes("features")) {
      if (info.visionHidden === undefined) {
        throw new Error(`${step.path}: the step graph reads visual features; OrtLMInfo.visionHidden (their width) is needed to feed an empty "features"`);
      }
      this.featureWidth = info.visionHidden;
    }
  }

  /** `step`: the step graph's path (opened and owned), or an open session to share (e.g. the folded visual step's). */
  static async create(step: string | OrtSession, embedPath: string, info: OrtLMInfo, opts: OrtSessionOptions = {}): Promise<OrtCausalLM> {
    const { session, owned } = await openSession(step, opts);
    try {
      return new OrtCausalLM(session, embedPath, info, opts, owned);
    } catch (e) {
      if (owned) session.dispose();
      throw e;
    }
  }

  newCache(): OrtKVCache {
    return new OrtKVCache(this.numLayers);
  }

  /** The embedding graph's session, opened once (a failed open is retried at the next call). */
  private embeddingSession(): Promise<OrtSession> {
    if (!this.embedding) {
      this.embedding = OrtSession.create(this.embedPath, this.opts);
      this.embedding.catch(() => (this.embedding = undefined));
    }
    return this.embedding;
  }

  /** `[B, T]` ids → `[B, T, C]`. */
  async embed(inputIds: tf.Tensor2D): Promise<tf.Tensor3D> {
    if (inputIds.rank !== 2) throw new Error(`OrtCausalLM.embed: ids shape [${inputIds.shape}], expected [B, T]`);
    const ids = inputIds.dataSync();
    const shape = [...inputIds.shape];
    for (const id of ids) if (id < 0 || id >= this.vocabSize || !Number.isInteger(id)) throw new RangeError(`OrtCausalLM.embed: token id ${id} outside [0, ${this.vocabSize})`);
    const session = await this.embeddingSession();
    const out = await session.run({ input_ids: int64(ids, shape) });
    return fromOrt<tf.Tensor3D>(out.inputs_embeds);
  }

  async forward(input: CausalLMInput): Promise<CausalLMOutput> {
    const { inputIds, inputsEmbeds, attentionMask, positionIds } = input;
    if (!!inputIds === !!inputsEmbeds) throw new Error("OrtCausalLM.forward: give exactly one of inputIds / inputsEmbeds");
    if (input.cache && !(input.cache instanceof OrtKVCache)) throw new Error("OrtCausalLM.forward: cache must be an OrtKVCache (from newCache() or a previous forward)");
    const cache = input.cache as OrtKVCache | undefined;
    const useCache = input.useCache ?? !!cache;
    const embeds = inputsEmbeds ?? (await this.embed(inputIds!));
    try {
      if (embeds.rank !== 3 || embeds.shape[2] !== this.hiddenSize) {
        throw new Error(`OrtCausalLM.forward: inputsEmbeds shape ${JSON.stringify(embeds.shape)}, expected [B, T, ${this.hiddenSize}]`);
      }
      const [B, T] = embeds.shape;
      const P = cache?.length ?? 0;
      const S = P + T;
      if (T < 1) throw new Error("OrtCausalLM.forward: empty input (T = 0)");
      if (P > 0 && cache!.batchSize !== B) throw new Error(`OrtCausalLM.forward: cache batch ${cache!.batchSize} differs from input batch ${B}`);
      if (attentionMask && (attentionMask.shape[0] !== B || attentionMask.shape[1] !== S)) {
        throw new Error(`OrtCausalLM.forward: attentionMask shape ${JSON.stringify(attentionMask.shape)}, expected [${B}, ${S}] (past ${P} + new ${T})`);
      }
      if (positionIds && (positionIds.shape[0] !== B || positionIds.shape[1] !== T)) {
        throw new Error(`OrtCausalLM.forward: positionIds shape ${JSON.stringify(positionIds.shape)}, expected [${B}, ${T}]`);
      }
      const mask = attentionMask ? Int32Array.from(attentionMask.dataSync(), (v) => (v > 0 ? 1 : 0)) : undefined;
      const positions = positionIds ? Array.from(positionIds.dataSync()) : defaultPositions(B, T, P, mask);
      const past = (cache ?? this.newCache()).feeds(B, this.numKeyValueHeads, this.headDim);
      const feeds: Record<string, ort.Tensor> = {
        inputs_embeds: toOrt(embeds),
        attention_mask: int64(mask ?? new Int32Array(B * S).fill(1), [B, S]),
        position_ids: int64(positions, [B, T]),
        ...past,
      };
      if (this.featureWidth !== undefined) feeds.features = emptyFloat([B, 0, this.featureWidth]);
      if (this.step.inputNames.includes(NUM_LOGITS)) feeds[NUM_LOGITS] = int64([T], [1]); // logits for every position
      const out = await this.step.run(feeds);
      const result: CausalLMOutput = { lastHiddenState: fromOrt(out.last_hidden_state), logits: fromOrt(out.logits) };
      if (useCache) {
        const next = cache ?? this.newCache();
        next.update(out);
        result.cache = next;
      }
      return result;
    } finally {
      if (embeds !== inputsEmbeds) embeds.dispose();
    }
  }

  dispose(): void {
    if (this.ownsStep) this.step.dispose();
    this.embedding?.then((s) => s.dispose(), () => undefined);
    this.embedding = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Folded visual step

export interface OrtVisualStepInfo extends OrtLMInfo {
  /** Width of one visual feature. */
  visionHidden: number;
}

export class OrtVisualStep {
  /** `session`: the folded step graph's open session (disposed by this step when `owned`). */
  constructor(
    private readonly session: OrtSession,
    readonly info: OrtVisualStepInfo,
    private readonly owned = false,
  ) {}

  /** `step`: the folded step graph's path (opened and owned), or its open session (shared, e.g. with an OrtCausalLM). */
  static async create(step: string | OrtSession, info: OrtVisualStepInfo, opts: OrtSessionOptions = {}): Promise<OrtVisualStep> {
    const { session, owned } = await openSession(step, opts);
    return new OrtVisualStep(session, info, owned);
  }

  /**
   * One run: text embeddings `[B, T1, Dl]` and/or features `[B, T2, Dv]` (either may be empty)
   * after the cache → next feature `[B, 1, Dv]`; the cache gains T1 + T2 positions.
   */
  async run(text: ort.Tensor, features: ort.Tensor, cache: OrtKVCache): Promise<ort.Tensor> {
    const { numKeyValueHeads: kv, headDim: hs } = this.info;
    const B = text.dims[0];
    const T = text.dims[1] + features.dims[1];
    const P = cache.length;
    const positions = new Array<number>(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = P + t;
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: text,
      features,
      attention_mask: int64(new Int32Array(B * (P + T)).fill(1), [B, P + T]),
      position_ids: int64(positions, [B, T]),
      ...cache.feeds(B, kv, hs),
    };
    if (this.session.inputNames.includes(NUM_LOGITS)) feeds[NUM_LOGITS] = int64([0], [1]); // no vocabulary projection
    const out = await this.session.run(feeds);
    cache.update(out);
    return out.next_feature;
  }

  dispose(): void {
    if (this.owned) this.session.dispose();
  }
}

export interface GenerateVisualOrtOptions {
  step: OrtVisualStep;
  /** `[B, T, Dl]` prompt embeddings ending with the text "<Img>" (rows unpadded). */
  promptEmbeds: tf.Tensor3D;
  /** Visual tokens to write (default 197). */
  numTokens?: number;
}

/**
 * The LM4LV visual loop (spec §5) on the folded step graph: the prompt in one run, then one run
 * per visual token (feature in, next feature out). Returns features `[B, numTokens, Dv]`, the same
 * as `generateVisualTokens` of @lm4lv/sampler with the LM and adapters the graph was built from.
 */
export async function generateVisualTokensOrt(options: GenerateVisualOrtOptions): Promise<tf.Tensor3D> {
  const { step, promptEmbeds } = options;
  const { hiddenSize: dl, visionHidden: dv } = step.info;
  const n = options.numTokens ?? 197;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`numTokens must be a positive integer, got ${n}`);
  const s = promptEmbeds.shape;
  if (promptEmbeds.rank !== 3 || s[1] < 1 || s[2] !== dl) {
    throw new Error(`generateVisualTokensOrt: promptEmbeds shape ${JSON.stringify(s)}, expected [B, T, ${dl}] with T ≥ 1`);
  }
  const B = s[0];
  const out = new Float32Array(B * n * dv);
  const cache = new OrtKVCache(step.info.numLayers);
  try {
    let f = await step.run(toOrt(promptEmbeds), emptyFloat([B, 0, dv]), cache); // [B, 1, Dv] visual token 0
    const noText = emptyFloat([B, 0, dl]);
    for (let i = 0; ; i++) {
      const fd = f.data as Float32Array;
      for (let b = 0; b < B; b++) out.set(fd.subarray(b * dv, (b + 1) * dv), (b * n + i) * dv);
      if (i === n - 1) break;
      f = await step.run(noText, f, cache); // feed token i, get token i+1
    }
  } finally {
    cache.dispose();
  }
  return tf.tensor3d(out, [B, n, dv]);
}
