/**
 * Optional LoRA on the LLM's attention projections (spec §3: r = 32, α = 64 in the reference;
 * off by default).
 *
 * For each chosen projection P ∈ {q, k, v, o} of every layer, two trained matrices, PEFT layout:
 *
 *   lora_A  [r, in]    U(−1/√in, 1/√in), seeded (PyTorch's Linear init, as PEFT)
 *   lora_B  [out, r]   zero, so a fresh LoRA leaves the model unchanged
 *   W'ᵀ = Wᵀ + (α / r) · Aᵀ Bᵀ        (the Llama package keeps W as a kernel Wᵀ [in, out])
 *
 * `@lm4lv/llm` is not modified: `wrap()` returns a `SyncCausalLM` whose forward builds the merged
 * kernels and runs a Llama that shares every other weight tensor, through the model's public
 * `(config, weights)` constructor. Merging per forward costs an extra copy of the chosen
 * projections (4·L matrices of C×C for a 7B model) while a gradient tape holds them.
 */
import * as tf from "@tensorflow/tfjs";
import type { CausalLMInput, CausalLMOutput, SyncCausalLM } from "@lm4lv/core";
import { Mulberry32 } from "@lm4lv/core";

export type LoraTarget = "q" | "k" | "v" | "o";
export const LORA_TARGETS: readonly LoraTarget[] = ["q", "k", "v", "o"];

export interface LoraConfig {
  /** Rank r (reference 32). */
  rank: number;
  /** Scale numerator α (reference 64); deltas are multiplied by α / r. */
  alpha: number;
  /** Projections to adapt (default q, k, v, o). */
  targets?: readonly LoraTarget[];
  /** Seed of lora_A's init (default 0). */
  seed?: number;
}

/** A projection as the Llama package stores it: kernel `[in, out]` (= HF weight transposed). */
interface KernelLinear {
  kernel: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

type LayerProjections = Record<LoraTarget, KernelLinear>;

/** What LoRA needs from a Llama model: its public config and weights, and its constructor. */
export interface LlamaLike extends SyncCausalLM {
  readonly config: object;
  readonly weights: { layers: readonly LayerProjections[] };
}

const HF_PROJ: Record<LoraTarget, string> = { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj" };

/** Stable tensor name of one LoRA matrix, e.g. `lora.layers.0.self_attn.q_proj.lora_A`. */
export function loraParamName(layer: number, target: LoraTarget, which: "A" | "B"): string {
  return `lora.layers.${layer}.self_attn.${HF_PROJ[target]}.lora_${which}`;
}

/** Expected shape of every LoRA tensor for a model's projections. */
export function loraParamShapes(lm: LlamaLike, config: LoraConfig): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  lm.weights.layers.forEach((layer, l) => {
    for (const t of config.targets ?? LORA_TARGETS) {
      const [inp, out] = layer[t].kernel.shape;
      shapes[loraParamName(l, t, "A")] = [config.rank, inp];
      shapes[loraParamName(l, t, "B")] = [out, config.rank];
    }
  });
  return shapes;
}

let loraCounter = 0;

export class LlamaLora {
  readonly config: Required<LoraConfig>;
  readonly base: LlamaLike;
  private readonly params: Map<string, tf.Variable>;
  private disposed = false;

  /** Fresh matrices (seeded A, zero B) or the given flat values (e.g. from a checkpoint). */
  constructor(base: LlamaLike, config: LoraConfig, initial?: Record<string, Float32Array>) {
    if (!Number.isInteger(config.rank) || config.rank < 1) throw new RangeError(`LoRA rank must be a positive integer, got ${config.rank}`);
    if (!(config.alpha > 0)) throw new RangeError(`LoRA alpha must be positive, got ${config.alpha}`);
    const targets = [...(config.targets ?? LORA_TARGETS)];
    for (const t of targets) if (!LORA_TARGETS.includes(t)) throw new RangeError(`unknown LoRA target ${JSON.stringify(t)} (expected q, k, v or o)`);
    this.config = { rank: config.rank, alpha: config.alpha, targets, seed: config.seed ?? 0 };
    this.base = base;

    const rng = new Mulberry32(this.config.seed);
    const scope = `lm4lv_lora_${loraCounter++}`;
    this.params = new Map();
    for (const [name, shape] of Object.entries(loraParamShapes(base, this.config))) {
      const n = shape[0] * shape[1];
      const isA = name.endsWith("lora_A");
      const drawn = isA ? rng.uniform(n, -1 / Math.sqrt(shape[1]), 1 / Math.sqrt(shape[1])) : new Float32Array(n);
      const values = initial?.[name] ?? drawn;
      if (values.length !== n) throw new Error(`LlamaLora: ${name} has ${values.length} values, expected ${n} (shape ${JSON.stringify(shape)})`);
      this.params.set(name, tf.variable(tf.tensor2d(values, shape as [number, number]), true, `${scope}/${name}`));
    }
  }

  get scale(): number {
    return this.config.alpha / this.config.rank;
  }

  variables(): tf.Variable[] {
    this.check();
    return [...this.params.values()];
  }

  namedVariables(): Record<string, tf.Variable> {
    this.check();
    return Object.fromEntries(this.params);
  }

  snapshot(): Record<string, { shape: number[]; data: Float32Array }> {
    this.check();
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, v] of this.params) out[name] = { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
    return out;
  }

  /** Kernel of one projection with its delta: Wᵀ + (α/r)·Aᵀ Bᵀ, `[in, out]`. */
  mergedKernel(layer: number, target: LoraTarget): tf.Tensor2D {
    const a = this.params.get(loraParamName(layer, target, "A"))!; // (r, in)
    const b = this.params.get(loraParamName(layer, target, "B"))!; // (out, r)
    const base = this.base.weights.layers[layer][target].kernel; // (in, out)
    return tf.tidy(() => base.add(tf.matMul(a, b, true, true).mul(this.scale))); // (in, out)
  }

  /**
   * A `CausalLM` running the base model with the LoRA deltas, differentiable with respect to the
   * LoRA variables. Every other tensor is shared with the base model; never dispose it.
   */
  wrap(): SyncCausalLM {
    this.check();
    const base = this.base;
    const Model = base.constructor as new (config: object, weights: object) => SyncCausalLM;
    const forwardSync = (input: CausalLMInput): CausalLMOutput => {
      this.check();
      let cache: CausalLMOutput["cache"];
      const out = tf.tidy(() => {
        const layers = base.weights.layers.map((layer, l) => {
          const merged: Record<string, KernelLinear> = { ...layer };
          for (const t of this.config.targets) merged[t] = { ...layer[t], kernel: this.mergedKernel(l, t) };
          return merged;
        });
        const model = new Model(base.config, { ...base.weights, layers });
        const result = model.forwardSync(input);
        cache = result.cache;
        return { lastHiddenState: result.lastHiddenState, logits: result.logits };
      });
      return cache ? { ...out, cache } : out;
    };
    return {
      hiddenSize: base.hiddenSize,
      vocabSize: base.vocabSize,
      embed: (ids) => base.embed(ids),
      embedSync: (ids) => base.embedSync(ids),
      forward: async (input) => forwardSync(input),
      forwardSync,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of this.params.values()) v.dispose();
    this.disposed = true;
  }

  private check(): void {
    if (this.disposed) throw new Error("this LlamaLora was disposed");
  }
}
