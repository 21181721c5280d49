/**
 * The seams of lm4lv. The sampler, the adapters and the apps depend on these
 * interfaces only, so a TensorFlow.js model and an ONNX Runtime model are interchangeable.
 *
 * The seams are asynchronous (ONNX Runtime's public `InferenceSession.run` returns a Promise).
 * The tfjs models also implement the `Sync*` variants: training differentiates through them
 * inside `tf.tidy` / `tf.variableGrads`, which cannot await.
 */
import type * as tf from "@tensorflow/tfjs";

/** A vision encoder/decoder pair working on HF-layout pixels `[B, 3, H, W]` (normalised). */
export interface VisionModel {
  readonly imageSize: number;
  readonly patchSize: number;
  /** Width of one visual feature (encoder hidden size). */
  readonly hiddenSize: number;
  /** 1 + (imageSize / patchSize)² : the CLS token is kept. */
  readonly numTokens: number;
  /** `[B, 3, H, W]` normalised → `[B, 1+N, hidden]` (no masking, identity order, CLS kept). */
  encode(pixelValues: tf.Tensor4D): Promise<tf.Tensor3D>;
  /** `[B, 1+N, hidden]` → `[B, 3, H, W]` in normalised space. */
  decode(features: tf.Tensor3D): Promise<tf.Tensor4D>;
  /**
   * Optional: frees what the encoder holds (e.g. an ONNX Runtime session and its weights) until
   * the next `encode` brings it back. Lowers peak memory when the LM runs between the two.
   */
  releaseEncoder?(): Promise<void>;
}

/** A `VisionModel` that also runs synchronously on tfjs (differentiable; usable inside `tf.tidy`). */
export interface SyncVisionModel extends VisionModel {
  /** `encode`, synchronously. */
  encodeSync(pixelValues: tf.Tensor4D): tf.Tensor3D;
  /** `decode`, synchronously. */
  decodeSync(features: tf.Tensor3D): tf.Tensor4D;
}

/** Per-layer key/value cache of a causal LM. Opaque to callers except for its length. */
export interface KVCache {
  /** Number of positions already stored. */
  readonly length: number;
  dispose(): void;
}

export interface CausalLMInput {
  /** `[B, T]` int32 token ids; exactly one of inputIds / inputsEmbeds. */
  inputIds?: tf.Tensor2D;
  /** `[B, T, hidden]` float32 input embeddings. */
  inputsEmbeds?: tf.Tensor3D;
  /** `[B, past + T]` 1 = attend, 0 = padding. Default: all ones. */
  attentionMask?: tf.Tensor2D;
  /** `[B, T]` int32 positions. Default: past .. past+T-1 (or from the attention mask). */
  positionIds?: tf.Tensor2D;
  /** Cache from a previous call; the returned cache includes the new positions. */
  cache?: KVCache;
  /** Return a cache (default true when a cache was given). */
  useCache?: boolean;
}

export interface CausalLMOutput {
  /** `[B, T, hidden]` after the final norm. */
  lastHiddenState: tf.Tensor3D;
  /** `[B, T, vocab]`. */
  logits: tf.Tensor3D;
  cache?: KVCache;
}

/** A frozen decoder-only LM that accepts input embeddings and a KV cache. */
export interface CausalLM {
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** `[B, T]` ids → `[B, T, hidden]` through the frozen embedding table. */
  embed(inputIds: tf.Tensor2D): Promise<tf.Tensor3D>;
  forward(input: CausalLMInput): Promise<CausalLMOutput>;
}

/** A `CausalLM` that also runs synchronously on tfjs (differentiable with respect to `inputsEmbeds`). */
export interface SyncCausalLM extends CausalLM {
  /** `embed`, synchronously. */
  embedSync(inputIds: tf.Tensor2D): tf.Tensor3D;
  /** `forward`, synchronously. */
  forwardSync(input: CausalLMInput): CausalLMOutput;
}

/** True when `model` also has the synchronous (tfjs) methods. */
export function isSyncVisionModel(model: VisionModel): model is SyncVisionModel {
  const m = model as Partial<SyncVisionModel>;
  return typeof m.encodeSync === "function" && typeof m.decodeSync === "function";
}

/** True when `lm` also has the synchronous (tfjs) methods. */
export function isSyncCausalLM(lm: CausalLM): lm is SyncCausalLM {
  const m = lm as Partial<SyncCausalLM>;
  return typeof m.embedSync === "function" && typeof m.forwardSync === "function";
}
