/**
 * Llama decoder-only LM (HF `LlamaForCausalLM`) in TensorFlow.js, frozen.
 *
 * In reading order: RMSNorm → attention (RoPE, grouped-query heads, KV cache) → SwiGLU MLP
 * → block → model. Notation: B batch, T new positions, P past (cached) positions,
 * S = P + T keys, C hidden, nh query heads, kv key/value heads, hs head width, I MLP width.
 *
 * Parameters are held by HF name (`namedParameters()`, HF layout); frozen unless made trainable
 * with `trainableParameters`. Outputs stay differentiable with respect to `inputsEmbeds` (tf.grad
 * works through `forwardSync`) and to trainable parameters. `embed` / `forward` are core's
 * asynchronous `CausalLM` seam; `embedSync` / `forwardSync` run the same code synchronously.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SafetensorsCheckpoint, writeFileAtomic, writeSafetensors } from "@lm4lv/core";
import type { CausalLMInput, CausalLMOutput, ParameterStore, SyncCausalLM, TensorToWrite } from "@lm4lv/core";
import { parseLlamaConfig, readLlamaConfig } from "./config.js";
import type { LlamaConfig } from "./config.js";
import { applyRotary, computeInvFreq, ropeCosSin } from "./rope.js";
import { LlamaKVCache } from "./cache.js";
import type { LayerKV } from "./cache.js";
import { loadParameters, parametersFrom, randomParameters } from "./weights.js";

/** Added to the scores of masked keys. Finite, so a fully masked row gives no NaN. */
export const MASK_VALUE = -1e9;

// ---------------------------------------------------------------------------------------------
// Small building blocks

/** x (B, T, in) @ kernel (in, out) + bias → (B, T, out). */
function linear(x: tf.Tensor3D, kernel: tf.Tensor2D, bias?: tf.Tensor): tf.Tensor3D {
  const [B, T, inp] = x.shape;
  const out = kernel.shape[1];
  let y = tf.matMul(x.reshape([B * T, inp]), kernel); // (B·T, out)
  if (bias) y = y.add(bias);
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

/** Adds a delta (HF layout `[out, in]`) to Linear weights by name; see `withWeightDeltas`. */
export type WeightDeltas = (name: string) => tf.Tensor | undefined;

export class LlamaForCausalLM implements SyncCausalLM {
  readonly config: LlamaConfig;
  readonly invFreq: Float32Array;
  /** Parameters by HF name (see `namedParameters`). */
  private readonly params: ParameterStore;
  /** Set on a view made by `withWeightDeltas` (which owns no parameter). */
  private readonly deltas?: WeightDeltas;
  private disposed = false;

  private constructor(config: LlamaConfig, params: ParameterStore, deltas?: WeightDeltas) {
    this.config = config;
    this.params = params;
    this.deltas = deltas;
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
      return new LlamaForCausalLM(config, loadParameters(config, ckpt));
    } finally {
      ckpt.close();
    }
  }

  /** Random weights (HF-style init with `initializer_range`), deterministic per seed. */
  static fromConfig(config: LlamaConfig | Record<string, unknown>, seed = 0): LlamaForCausalLM {
    const c = parseLlamaConfig(config as Record<string, unknown>, "fromConfig");
    return new LlamaForCausalLM(c, randomParameters(c, seed));
  }

  /**
   * A model from HF-named, HF-layout tensors (a state dict: every name of `llamaWeightTable`,
   * with its shape). The tensors are copied; the caller keeps its own.
   */
  static fromParameters(config: LlamaConfig | Record<string, unknown>, tensors: ReadonlyMap<string, tf.Tensor>): LlamaForCausalLM {
    const c = parseLlamaConfig(config as Record<string, unknown>, "fromParameters");
    return new LlamaForCausalLM(c, parametersFrom(c, tensors));
  }

  /** Writes config.json + model.safetensors under HF names (a tied model stores no lm_head). */
  save(dir: string, options: SaveOptions = {}): void {
    this.check();
    const dtype = options.dtype ?? "F32";
    mkdirSync(dir, { recursive: true });
    const torchDtype = { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype];
    const config = { architectures: ["LlamaForCausalLM"], model_type: "llama", ...this.config, torch_dtype: torchDtype };
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of this.params.names()) tensors[name] = { shape: this.params.shape(name), data: this.params.read(name), dtype };
    writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
    writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  }

  // --- parameters --------------------------------------------------------------------------

  /**
   * Every parameter by its HF state-dict name (`model.layers.0.self_attn.q_proj.weight`, ...), in
   * HF layout (Linear weights `[out, in]`) and checkpoint order; a tied model has no `lm_head.weight`.
   * Trainable ones are the `tf.Variable`s training updates. The tensors belong to the model: never
   * dispose them. (The model computes with frozen Linear weights transposed; the first call keeps
   * an HF-layout copy of each.)
   */
  namedParameters(): Map<string, tf.Tensor> {
    this.check();
    return this.params.namedParameters();
  }

  /**
   * One parameter as `namedParameters()` gives it (HF name, HF layout), copied to the host;
   * nothing is kept (for export and graph building without an HF-layout copy of every weight).
   */
  readParameter(name: string): { shape: number[]; data: Float32Array } {
    this.check();
    return { shape: this.params.shape(name), data: this.params.read(name) };
  }

  /**
   * Makes the parameters whose names `select` accepts trainable (default: all): each becomes a
   * `tf.Variable` in HF layout that the model computes with from then on. Returns them by name.
   */
  trainableParameters(select: (name: string) => boolean = () => true): Record<string, tf.Variable> {
    this.check();
    return this.params.trainable(select);
  }

  /** The token embedding table `[vocab, hidden]` (HF `get_input_embeddings`), a `tf.Variable` when trainable. */
  inputEmbeddings(): tf.Tensor2D {
    this.check();
    return this.params.get("model.embed_tokens.weight") as tf.Tensor2D;
  }

  /** Number of parameters (a tied embedding counts once). */
  parameterCount(): number {
    return this.params.count();
  }

  /**
   * A view of this model whose Linear weights `W` compute as `W + deltas(name)` when `deltas`
   * returns a tensor (HF layout `[out, in]`, e.g. LoRA's (α/r)·B·A), at every forward and
   * differentiably; `deltas` is called inside the forward's `tf.tidy`. The view shares this
   * model's parameters and owns none (its `dispose` does nothing).
   */
  withWeightDeltas(deltas: WeightDeltas): LlamaForCausalLM {
    this.check();
    return new LlamaForCausalLM(this.config, this.params, deltas);
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
      return tf.gather(this.params.get("model.embed_tokens.weight"), ids) as unknown as tf.Tensor3D; // (B, T, C)
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
    p: string,
    cos: tf.Tensor4D,
    sin: tf.Tensor4D,
    bias: tf.Tensor4D,
    past: LayerKV | undefined,
  ): { out: tf.Tensor3D; present: LayerKV } {
    const { num_attention_heads: nh, num_key_value_heads: kv, head_dim: hs } = this.config;
    const [B, T] = x.shape;
    const S = (past?.key.shape[2] ?? 0) + T;
    let q = splitHeads(this.linear(x, `${p}.self_attn.q_proj`), nh, hs); // (B, nh, T, hs)
    let k = splitHeads(this.linear(x, `${p}.self_attn.k_proj`), kv, hs); // (B, kv, T, hs)
    let v = splitHeads(this.linear(x, `${p}.self_attn.v_proj`), kv, hs); // (B, kv, T, hs)
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
    return { out: this.linear(y, `${p}.self_attn.o_proj`), present: { key: k, value: v } };
  }

  // --- MLP -----------------------------------------------------------------------------------

  /** SwiGLU: down(silu(gate(x)) · up(x)). (B, T, C) → (B, T, I) → (B, T, C). */
  private mlp(x: tf.Tensor3D, p: string): tf.Tensor3D {
    const gate = this.linear(x, `${p}.mlp.gate_proj`); // (B, T, I)
    const up = this.linear(x, `${p}.mlp.up_proj`); // (B, T, I)
    const act = gate.mul(gate.sigmoid()); // silu
    return this.linear(act.mul(up) as tf.Tensor3D, `${p}.mlp.down_proj`); // (B, T, C)
  }

  // --- block ---------------------------------------------------------------------------------

  /** Pre-norm residual block. (B, T, C) → (B, T, C). */
  private block(
    h: tf.Tensor3D,
    p: string,
    cos: tf.Tensor4D,
    sin: tf.Tensor4D,
    bias: tf.Tensor4D,
    past: LayerKV | undefined,
  ): { h: tf.Tensor3D; present: LayerKV } {
    const eps = this.config.rms_norm_eps;
    const att = this.attention(rmsNorm(h, this.params.get(`${p}.input_layernorm.weight`) as tf.Tensor1D, eps), p, cos, sin, bias, past);
    h = h.add(att.out);
    h = h.add(this.mlp(rmsNorm(h, this.params.get(`${p}.post_attention_layernorm.weight`) as tf.Tensor1D, eps), p));
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
      for (let l = 0; l < this.numLayers; l++) {
        if (outputHiddenStates) hiddenStates.push(h);
        const out = this.block(h, `model.layers.${l}`, cos, sin, bias, cache?.layer(l));
        h = out.h;
        if (useCache) presents.push({ key: tf.keep(out.present.key), value: tf.keep(out.present.value) });
      }
      const lastHiddenState = rmsNorm(h, this.params.get("model.norm.weight") as tf.Tensor1D, this.config.rms_norm_eps); // (B, T, C)
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
    if (!this.config.tie_word_embeddings) return this.linear(h, "lm_head");
    const [B, T, C] = h.shape;
    return tf.matMul(h.reshape([B * T, C]), this.params.get("model.embed_tokens.weight") as tf.Tensor2D, false, true).reshape([B, T, this.vocabSize]);
  }

  /** x (B, T, in) → (B, T, out) through the Linear `<prefix>.weight` (+ its delta on a view) and its bias, if any. */
  private linear(x: tf.Tensor3D, prefix: string): tf.Tensor3D {
    const name = `${prefix}.weight`;
    const bias = this.params.has(`${prefix}.bias`) ? this.params.get(`${prefix}.bias`) : undefined;
    return linear(x, this.params.kernel(name, this.deltas?.(name)), bias);
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
    if (!this.deltas) this.params.dispose(); // a view owns nothing
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error("this LlamaForCausalLM was disposed");
  }
}
