/**
 * Llama decoder-only LM (HF `LlamaForCausalLM`) in TensorFlow.js, frozen.
 *
 * In reading order: RMSNorm → attention (RoPE, grouped-query heads, KV cache) → SwiGLU MLP
 * → block → model. Notation: B batch, T new positions, P past (cached) positions,
 * S = P + T keys, C hidden, nh query heads, kv key/value heads, hs head width, I MLP width.
 *
 * Weights are plain tensors (never variables); outputs stay differentiable with respect to
 * `inputsEmbeds` (tf.grad works through `forwardSync`). `embed` / `forward` are core's
 * asynchronous `CausalLM` seam; `embedSync` / `forwardSync` run the same code synchronously.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SafetensorsCheckpoint, writeFileAtomic } from "@lm4lv/core";
import type { CausalLMInput, CausalLMOutput, SyncCausalLM } from "@lm4lv/core";
import { parseLlamaConfig, readLlamaConfig } from "./config.js";
import type { LlamaConfig } from "./config.js";
import { applyRotary, computeInvFreq, ropeCosSin } from "./rope.js";
import { LlamaKVCache } from "./cache.js";
import type { LayerKV } from "./cache.js";
import { disposeWeights, loadWeights, randomWeights, saveWeights } from "./weights.js";
import type { Linear, LlamaLayerWeights, LlamaWeights } from "./weights.js";

/** Added to the scores of masked keys. Finite, so a fully masked row gives no NaN. */
export const MASK_VALUE = -1e9;

// ---------------------------------------------------------------------------------------------
// Small building blocks

/** x (B, T, in) @ kernel (in, out) + bias → (B, T, out). */
function linear(x: tf.Tensor3D, w: Linear): tf.Tensor3D {
  const [B, T, inp] = x.shape;
  const out = w.kernel.shape[1];
  let y = tf.matMul(x.reshape([B * T, inp]), w.kernel); // (B·T, out)
  if (w.bias) y = y.add(w.bias);
  return y.reshape([B, T, out]);
}

/** RMSNorm in float32: weight · x / √(mean(x²) + eps), over the last axis. x (B, T, C). */
export function rmsNorm(x: tf.Tensor3D, weight: tf.Tensor1D, eps: number): tf.Tensor3D {
  const meanSquare = x.square().mean(-1, true); // (B, T, 1)
  return x.mul(meanSquare.add(eps).rsqrt()).mul(weight);
}

/** (B, T, n·hs) → (B, n, T, hs). */
function splitHeads(x: tf.Tensor3D, n: number, hs: number): tf.Tensor4D {
  const [B, T] = x.shape;
  return x.reshape([B, T, n, hs]).transpose([0, 2, 1, 3]);
}

/**
 * Additive attention bias (B or 1, 1, T, S): 0 where query t (absolute position P + t) may see key s
 * (s ≤ P + t and attentionMask[b, s] = 1), MASK_VALUE elsewhere.
 */
function attentionBias(T: number, P: number, attentionMask?: tf.Tensor2D): tf.Tensor4D {
  const S = P + T;
  const causal = new Float32Array(T * S);
  for (let t = 0; t < T; t++) for (let s = 0; s <= P + t; s++) causal[t * S + s] = 1;
  let allowed: tf.Tensor4D = tf.tensor4d(causal, [1, 1, T, S]);
  if (attentionMask) {
    const B = attentionMask.shape[0];
    allowed = allowed.mul(attentionMask.toFloat().reshape([B, 1, 1, S]));
  }
  return tf.scalar(1).sub(allowed).mul(MASK_VALUE);
}

/**
 * Positions when the caller gives none. With an attention mask: cumsum(mask) − 1, padded slots
 * set to 1 (as HF generate does), last T columns. Without: P .. P+T−1 for every row. (B, T) int32.
 */
function defaultPositionIds(B: number, T: number, P: number, attentionMask?: tf.Tensor2D): tf.Tensor2D {
  if (!attentionMask) return tf.range(P, P + T, 1, "int32").reshape([1, T]).tile([B, 1]) as tf.Tensor2D;
  const mask = attentionMask.toFloat(); // (B, S)
  const pos = tf.where(mask.greater(0), mask.cumsum(1).sub(1), tf.onesLike(mask)); // (B, S)
  return pos.slice([0, P], [B, T]).toInt() as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// Model

export interface LlamaInput extends CausalLMInput {
  /** Also return the per-layer hidden states (HF `output_hidden_states`). */
  outputHiddenStates?: boolean;
}

export interface LlamaOutput extends CausalLMOutput {
  /** `[B, T, hidden]` after the final norm. */
  lastHiddenState: tf.Tensor3D;
  /** `[B, T, vocab]`. */
  logits: tf.Tensor3D;
  /** The given cache, updated in place, or a new one (when useCache). */
  cache?: LlamaKVCache;
  /**
   * HF semantics (num_hidden_layers + 1 entries): [0] embeddings, [i] output of layer i−1 for
   * i < L, [L] the final-norm output (the raw output of the last layer is not exposed).
   */
  hiddenStates?: tf.Tensor3D[];
}

export interface SaveOptions {
  /** Stored float type (default F32). */
  dtype?: "F32" | "F16" | "BF16";
}

export interface GreedyOptions {
  /** Stop a row at this token (default: none). */
  eosTokenId?: number;
  /** Also return the logits row that chose each token (for inspection/tests). */
  keepLogits?: boolean;
}

export interface GreedyResult {
  /** (B, n) generated ids (without the prompt). */
  tokens: number[][];
  /** When keepLogits: per step, (B, vocab) flat. */
  stepLogits?: Float32Array[];
}

export class LlamaForCausalLM implements SyncCausalLM {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly invFreq: Float32Array;
  private disposed = false;

  constructor(config: LlamaConfig, weights: LlamaWeights) {
    this.config = config;
    this.weights = weights;
    this.invFreq = computeInvFreq(config);
  }

  get hiddenSize(): number {
    return this.config.hidden_size;
  }

  get vocabSize(): number {
    return this.config.vocab_size;
  }

  get numLayers(): number {
    return this.config.num_hidden_layers;
  }

  /**
   * Loads an HF folder: config.json + model.safetensors or sharded model-*.safetensors with
   * model.safetensors.index.json. Stored F32/F16/BF16 become float32. Every tensor name and shape
   * is checked before anything is read.
   */
  static fromPretrained(dir: string): LlamaForCausalLM {
    const config = readLlamaConfig(dir);
    const ckpt = SafetensorsCheckpoint.open(dir);
    try {
      return new LlamaForCausalLM(config, loadWeights(config, ckpt));
    } finally {
      ckpt.close();
    }
  }

  /** Random weights (HF-style init with `initializer_range`), deterministic per seed. */
  static fromConfig(config: LlamaConfig | Record<string, unknown>, seed = 0): LlamaForCausalLM {
    const c = parseLlamaConfig(config as Record<string, unknown>, "fromConfig");
    return new LlamaForCausalLM(c, randomWeights(c, seed));
  }

  /** Writes config.json + model.safetensors under HF names (a tied model stores no lm_head). */
  save(dir: string, options: SaveOptions = {}): void {
    this.check();
    const dtype = options.dtype ?? "F32";
    mkdirSync(dir, { recursive: true });
    const torchDtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype];
    const config = { architectures: ["LlamaForCausalLM"], model_type: "llama", ...this.config, torch_dtype: torchDtype };
    saveWeights(join(dir, "model.safetensors"), this.config, this.weights, dtype);
    writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  /** (B, T) ids → (B, T, C) through the frozen embedding table. */
  async embed(inputIds: tf.Tensor2D): Promise<tf.Tensor3D> {
    return this.embedSync(inputIds);
  }

  /** `embed`, synchronously. */
  embedSync(inputIds: tf.Tensor2D): tf.Tensor3D {
    this.check();
    return tf.tidy(() => {
      const ids = inputIds.dtype === "int32" ? inputIds : inputIds.toInt();
      return tf.gather(this.weights.embedTokens, ids) as unknown as tf.Tensor3D; // (B, T, C)
    });
  }

  /** A fresh, empty cache for this model. */
  newCache(): LlamaKVCache {
    return new LlamaKVCache(this.numLayers);
  }

  // --- attention ---------------------------------------------------------------------------

  /**
   * x (B, T, C) → (B, T, C). `past` holds the cached K/V (B, kv, P, hs); the returned `present`
   * adds this call's positions: (B, kv, S, hs).
   */
  private attention(
    x: tf.Tensor3D,
    w: LlamaLayerWeights,
    cos: tf.Tensor4D,
    sin: tf.Tensor4D,
    bias: tf.Tensor4D,
    past: LayerKV | undefined,
  ): { out: tf.Tensor3D; present: LayerKV } {
    const { num_attention_heads: nh, num_key_value_heads: kv, head_dim: hs } = this.config;
    const [B, T] = x.shape;
    const S = (past?.key.shape[2] ?? 0) + T;
    let q = splitHeads(linear(x, w.q), nh, hs); // (B, nh, T, hs)
    let k = splitHeads(linear(x, w.k), kv, hs); // (B, kv, T, hs)
    let v = splitHeads(linear(x, w.v), kv, hs); // (B, kv, T, hs)
    q = applyRotary(q, cos, sin);
    k = applyRotary(k, cos, sin);
    if (past) {
      k = tf.concat([past.key, k], 2); // (B, kv, S, hs)
      v = tf.concat([past.value, v], 2); // (B, kv, S, hs)
    }
    // Grouped-query attention: query head h reads key/value head ⌊h / nRep⌋. The nRep query heads
    // sharing a key/value head are stacked along the query axis, so K/V are used as stored
    // (the same result as repeating K/V nRep times, without the copies).
    const nRep = nh / kv;
    const qGrouped = q.reshape([B, kv, nRep * T, hs]); // (B, kv, nRep·T, hs)
    const scores = tf.matMul(qGrouped, k, false, true) // (B, kv, nRep·T, S)
      .mul(1 / Math.sqrt(hs))
      .reshape([B, nh, T, S]) // (B, nh, T, S)
      .add(bias);
    const probs = tf.softmax(scores, -1).reshape([B, kv, nRep * T, S]); // (B, kv, nRep·T, S)
    const y = tf.matMul(probs, v) // (B, kv, nRep·T, hs)
      .reshape([B, nh, T, hs]) // (B, nh, T, hs)
      .transpose([0, 2, 1, 3]) // (B, T, nh, hs)
      .reshape([B, T, nh * hs]) as tf.Tensor3D;
    return { out: linear(y, w.o), present: { key: k, value: v } };
  }

  // --- MLP -----------------------------------------------------------------------------------

  /** SwiGLU: down(silu(gate(x)) · up(x)). (B, T, C) → (B, T, I) → (B, T, C). */
  private mlp(x: tf.Tensor3D, w: LlamaLayerWeights): tf.Tensor3D {
    const gate = linear(x, w.gate); // (B, T, I)
    const up = linear(x, w.up); // (B, T, I)
    const act = gate.mul(gate.sigmoid()); // silu
    return linear(act.mul(up) as tf.Tensor3D, w.down); // (B, T, C)
  }

  // --- block ---------------------------------------------------------------------------------

  /** Pre-norm residual block. (B, T, C) → (B, T, C). */
  private block(
    h: tf.Tensor3D,
    w: LlamaLayerWeights,
    cos: tf.Tensor4D,
    sin: tf.Tensor4D,
    bias: tf.Tensor4D,
    past: LayerKV | undefined,
  ): { h: tf.Tensor3D; present: LayerKV } {
    const eps = this.config.rms_norm_eps;
    const att = this.attention(rmsNorm(h, w.inputNorm, eps), w, cos, sin, bias, past);
    h = h.add(att.out);
    h = h.add(this.mlp(rmsNorm(h, w.postAttentionNorm, eps), w));
    return { h, present: att.present };
  }

  // --- model ---------------------------------------------------------------------------------

  async forward(input: LlamaInput): Promise<LlamaOutput> {
    return this.forwardSync(input);
  }

  /** `forward`, synchronously (differentiable with respect to `inputsEmbeds`; usable inside `tf.tidy`). */
  forwardSync(input: LlamaInput): LlamaOutput {
    this.check();
    const { inputIds, inputsEmbeds, attentionMask, positionIds, outputHiddenStates } = input;
    if (!!inputIds === !!inputsEmbeds) throw new Error("LlamaForCausalLM.forward: give exactly one of inputIds / inputsEmbeds");
    if (input.cache && !(input.cache instanceof LlamaKVCache)) throw new Error("LlamaForCausalLM.forward: cache must be a LlamaKVCache (from newCache() or a previous forward)");
    const cache = input.cache as LlamaKVCache | undefined;
    if (cache && cache.numLayers !== this.numLayers) throw new Error(`LlamaForCausalLM.forward: cache has ${cache.numLayers} layers, model has ${this.numLayers}`);
    const useCache = input.useCache ?? !!cache;

    const [B, T] = inputIds ? inputIds.shape : inputsEmbeds!.shape;
    const P = cache?.length ?? 0;
    const S = P + T;
    if (inputsEmbeds && (inputsEmbeds.rank !== 3 || inputsEmbeds.shape[2] !== this.hiddenSize)) {
      throw new Error(`LlamaForCausalLM.forward: inputsEmbeds shape ${JSON.stringify(inputsEmbeds.shape)}, expected [B, T, ${this.hiddenSize}]`);
    }
    if (inputIds && inputIds.rank !== 2) throw new Error(`LlamaForCausalLM.forward: inputIds shape ${JSON.stringify(inputIds.shape)}, expected [B, T]`);
    if (T < 1) throw new Error("LlamaForCausalLM.forward: empty input (T = 0)");
    if (P > 0 && cache!.batchSize !== B) throw new Error(`LlamaForCausalLM.forward: cache batch ${cache!.batchSize} differs from input batch ${B}`);
    if (attentionMask && (attentionMask.shape[0] !== B || attentionMask.shape[1] !== S)) {
      throw new Error(`LlamaForCausalLM.forward: attentionMask shape ${JSON.stringify(attentionMask.shape)}, expected [${B}, ${S}] (past ${P} + new ${T})`);
    }
    if (positionIds && (positionIds.shape[0] !== B || positionIds.shape[1] !== T)) {
      throw new Error(`LlamaForCausalLM.forward: positionIds shape ${JSON.stringify(positionIds.shape)}, expected [${B}, ${T}]`);
    }

    let presents: LayerKV[] = [];
    const result = tf.tidy(() => {
      const x = inputIds ? this.embedSync(inputIds) : inputsEmbeds!; // (B, T, C)
      const positions = positionIds ?? defaultPositionIds(B, T, P, attentionMask); // (B, T)
      const { cos, sin } = ropeCosSin(positions, this.invFreq); // (B, 1, T, hs)
      const bias = attentionBias(T, P, attentionMask); // (B|1, 1, T, S)

      const hiddenStates: tf.Tensor3D[] = [];
      let h = x;
      this.weights.layers.forEach((w, l) => {
        if (outputHiddenStates) hiddenStates.push(h);
        const out = this.block(h, w, cos, sin, bias, cache?.layer(l));
        h = out.h;
        if (useCache) presents.push({ key: tf.keep(out.present.key), value: tf.keep(out.present.value) });
      });
      const lastHiddenState = rmsNorm(h, this.weights.norm, this.config.rms_norm_eps); // (B, T, C)
      if (outputHiddenStates) hiddenStates.push(lastHiddenState);
      const logits = this.lmHead(lastHiddenState); // (B, T, vocab)
      return outputHiddenStates ? { lastHiddenState, logits, hiddenStates } : { lastHiddenState, logits };
    });

    if (!useCache) return result;
    try {
      const out = cache ?? this.newCache();
      out.replace(presents);
      presents = [];
      return { ...result, cache: out };
    } finally {
      // Only reached with tensors left when replace threw.
      presents.forEach(({ key, value }) => { key.dispose(); value.dispose(); });
    }
  }

  /** (B, T, C) → (B, T, vocab); a tied model multiplies by the embedding table transposed. */
  private lmHead(h: tf.Tensor3D): tf.Tensor3D {
    if (this.weights.lmHead) return linear(h, this.weights.lmHead);
    const [B, T, C] = h.shape;
    return tf.matMul(h.reshape([B * T, C]), this.weights.embedTokens, false, true).reshape([B, T, this.vocabSize]);
  }

  /**
   * Greedy decoding with the KV cache: the prompt (B, T) once, then one token per step.
   * Rows of a batch are assumed unpadded.
   */
  generateGreedy(promptIds: tf.Tensor2D | number[][], maxNewTokens: number, options: GreedyOptions = {}): GreedyResult {
    this.check();
    const prompt = Array.isArray(promptIds) ? tf.tensor2d(promptIds, undefined, "int32") : promptIds;
    const B = prompt.shape[0];
    const tokens: number[][] = Array.from({ length: B }, () => []);
    const stepLogits: Float32Array[] = [];
    const done = new Array(B).fill(false);
    const cache = this.newCache();
    try {
      let next: tf.Tensor2D = prompt;
      for (let step = 0; step < maxNewTokens; step++) {
        const out = this.forwardSync({ inputIds: next, cache });
        const lastLogits = tf.tidy(() => out.logits.slice([0, out.logits.shape[1] - 1, 0], [B, 1, this.vocabSize]).reshape([B, this.vocabSize]));
        const ids = tf.tidy(() => lastLogits.argMax(-1));
        const chosen = Array.from(ids.dataSync());
        if (options.keepLogits) stepLogits.push(lastLogits.dataSync() as Float32Array);
        tf.dispose([out.logits, out.lastHiddenState, lastLogits, ids]);
        if (next !== prompt) next.dispose();
        chosen.forEach((id, b) => {
          if (done[b]) return;
          tokens[b].push(id);
          if (options.eosTokenId !== undefined && id === options.eosTokenId) done[b] = true;
        });
        if (done.every(Boolean) || step === maxNewTokens - 1) break;
        next = tf.tensor2d(chosen, [B, 1], "int32");
      }
    } finally {
      cache.dispose();
      if (prompt !== promptIds) prompt.dispose();
    }
    return options.keepLogits ? { tokens, stepLogits } : { tokens };
  }

  dispose(): void {
    if (this.disposed) return;
    disposeWeights(this.config, this.weights);
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error("this LlamaForCausalLM was disposed");
  }
}
