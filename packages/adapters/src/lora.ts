/**
 * Optional LoRA on the LLM's attention projections (spec §3: r = 32, α = 64 in the reference;
 * off by default).
 *
 * For each chosen projection P ∈ {q, k, v, o} of every layer, two trained matrices, PEFT layout:
 *
 *   lora_A  [r, in]    U(−1/√in, 1/√in), seeded (PyTorch's Linear init, as PEFT)
 *   lora_B  [out, r]   zero, so a fresh LoRA leaves the model unchanged
 *   W' = W + (α / r) · B A             (HF layout [out, in], `model.layers.<l>.self_attn.<P>_proj.weight`)
 *
 * The projections and their shapes come from the model's `namedParameters()` (HF names and
 * layout); `wrap()` is the model's `withWeightDeltas` view, which adds the deltas at every
 * forward. Merging per forward costs an extra copy of the chosen projections (4·L matrices of
 * C×C for a 7B model) while a gradient tape holds them.
 */
import * as tf from "@tensorflow/tfjs";
import type { SyncCausalLM } from "@lm4lv/core";
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

/** What LoRA needs from a Llama model (`LlamaForCausalLM` of @lm4lv/llm): its HF-named parameters and delta views. */
export interface LlamaLike extends SyncCausalLM {
  namedParameters(): Map<string, tf.Tensor>;
  withWeightDeltas(deltas: (name: string) => tf.Tensor | undefined): SyncCausalLM;
}

const HF_PROJ: Record<LoraTarget, string> = { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj" };

/** HF name of the projection a LoRA pair adapts, e.g. `model.layers.0.self_attn.q_proj.weight`. */
export function loraBaseName(layer: number, target: LoraTarget): string {
  return `model.layers.${layer}.self_attn.${HF_PROJ[target]}.weight`;
}

/** Stable tensor name of one LoRA matrix, e.g. `lora.layers.0.self_attn.q_proj.lora_A`. */
export function loraParamName(layer: number, target: LoraTarget, which: "A" | "B"): string {
  return `lora.layers.${layer}.self_attn.${HF_PROJ[target]}.lora_${which}`;
}

/** Expected shape of every LoRA tensor for a model's projections (HF `[out, in]` each). */
export function loraParamShapes(lm: LlamaLike, config: LoraConfig): Record<string, number[]> {
  const params = lm.namedParameters();
  const shapes: Record<string, number[]> = {};
  for (let l = 0; params.has(loraBaseName(l, "q")); l++) {
    for (const t of config.targets ?? LORA_TARGETS) {
      const [out, inp] = params.get(loraBaseName(l, t))!.shape;
      shapes[loraParamName(l, t, "A")] = [config.rank, inp];
      shapes[loraParamName(l, t, "B")] = [out, config.rank];
    }
  }
  if (Object.keys(shapes).length === 0) throw new Error(`LlamaLora: the model has no ${loraBaseName(0, "q")}`);
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

  /** The delta of one projection, (α/r)·B·A `[out, in]` (HF layout, added to its weight). */
  delta(layer: number, target: LoraTarget): tf.Tensor2D {
    const a = this.params.get(loraParamName(layer, target, "A"))!; // (r, in)
    const b = this.params.get(loraParamName(layer, target, "B"))!; // (out, r)
    return tf.tidy(() => tf.matMul(b, a).mul(this.scale)); // (out, in)
  }

  /**
   * A `CausalLM` running the base model with the LoRA deltas, differentiable with respect to the
   * LoRA variables: the base model's `withWeightDeltas` view, sharing every tensor with it.
   */
  wrap(): SyncCausalLM {
    this.check();
    const byName = new Map<string, [number, LoraTarget]>();
    const layers = new Set([...this.params.keys()].map((n) => Number(n.split(".")[2])));
    for (const l of layers) for (const t of this.config.targets) byName.set(loraBaseName(l, t), [l, t]);
    return this.base.withWeightDeltas((name) => {
      this.check();
      const at = byName.get(name);
      return at ? this.delta(at[0], at[1]) : undefined;
    });
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
