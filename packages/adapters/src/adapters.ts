/**
 * The only trained parameters of LM4LV (spec §3):
 *
 *   adapter      Linear(vision_hidden → llm_hidden), with bias   MAE feature → LLM input embedding
 *   de_adapter   Linear(llm_hidden → vision_hidden), with bias   final-norm hidden state → MAE feature
 *   task_tokens  [numTaskTokens, llm_hidden], zero-initialised    learnable prompt vectors
 *
 * Linear weights are stored as PyTorch does, `[out, in]`, so checkpoints need no transposes;
 * `y = x · Wᵀ + b`. Init is PyTorch's default for nn.Linear: weight and bias ~ U(−1/√in, 1/√in),
 * drawn from a seeded generator (weight first, then bias; adapter, then de-adapter).
 *
 * Every parameter is a `tf.Variable`; `variables()` is what an optimiser or `tf.variableGrads`
 * should see. The frozen LLM and MAE hold plain tensors, never variables.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32 } from "@lm4lv/core";

/** Stable parameter names, as stored in `adapters.safetensors`. */
export const ADAPTER_PARAM_NAMES = ["adapter.weight", "adapter.bias", "de_adapter.weight", "de_adapter.bias", "task_tokens"] as const;
export type AdapterParamName = (typeof ADAPTER_PARAM_NAMES)[number];

export const DEFAULT_TASK_TOKENS = 10;

export interface AdaptersConfig {
  /** Width of one MAE feature (1024 for MAE-Large). */
  visionHidden: number;
  /** LLM hidden size (4096 for Llama-2-7B). */
  llmHidden: number;
  /** Learnable task vectors (default 10). */
  numTaskTokens?: number;
  /** Seed of the linear layers' init (default 0). */
  seed?: number;
}

/** Expected shape of every parameter for the given sizes. */
export function adapterParamShapes(visionHidden: number, llmHidden: number, numTaskTokens: number): Record<AdapterParamName, number[]> {
  return {
    "adapter.weight": [llmHidden, visionHidden],
    "adapter.bias": [llmHidden],
    "de_adapter.weight": [visionHidden, llmHidden],
    "de_adapter.bias": [visionHidden],
    task_tokens: [numTaskTokens, llmHidden],
  };
}

function checkSize(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

/** x [..., in] · Wᵀ [in, out] + b → [..., out]. W is PyTorch-layout [out, in]. */
function linear<T extends tf.Tensor>(x: T, weight: tf.Tensor2D, bias: tf.Tensor1D, what: string): T {
  const [out, inp] = weight.shape;
  if (x.rank < 1 || x.shape[x.rank - 1] !== inp) {
    throw new Error(`${what}: input shape ${JSON.stringify(x.shape)}, expected last dimension ${inp}`);
  }
  return tf.tidy(() => {
    const flat = x.reshape([-1, inp]) as tf.Tensor2D; // (rows, in)
    const y = tf.matMul(flat, weight, false, true).add(bias); // (rows, out)
    return y.reshape([...x.shape.slice(0, -1), out]) as T;
  });
}

let instanceCounter = 0;

export class LM4LVAdapters {
  readonly visionHidden: number;
  readonly llmHidden: number;
  readonly numTaskTokens: number;
  private readonly params: Record<AdapterParamName, tf.Variable>;
  private disposed = false;

  /**
   * Fresh parameters (seeded PyTorch init, zero task tokens), or the given values (`initial`,
   * flat row-major, e.g. from a checkpoint; sizes are checked).
   */
  constructor(config: AdaptersConfig, initial?: Partial<Record<AdapterParamName, Float32Array>>) {
    this.visionHidden = checkSize(config.visionHidden, "visionHidden");
    this.llmHidden = checkSize(config.llmHidden, "llmHidden");
    this.numTaskTokens = checkSize(config.numTaskTokens ?? DEFAULT_TASK_TOKENS, "numTaskTokens");
    const shapes = adapterParamShapes(this.visionHidden, this.llmHidden, this.numTaskTokens);

    const rng = new Mulberry32(config.seed ?? 0);
    const fresh = (name: AdapterParamName, fanIn: number): Float32Array => {
      const n = shapes[name].reduce((a, b) => a * b, 1);
      if (name === "task_tokens") return new Float32Array(n);
      const bound = 1 / Math.sqrt(fanIn);
      return rng.uniform(n, -bound, bound);
    };
    // Draw in a fixed order even when some values are given, so the seed means the same thing.
    const drawn: Record<AdapterParamName, Float32Array> = {
      "adapter.weight": fresh("adapter.weight", this.visionHidden),
      "adapter.bias": fresh("adapter.bias", this.visionHidden),
      "de_adapter.weight": fresh("de_adapter.weight", this.llmHidden),
      "de_adapter.bias": fresh("de_adapter.bias", this.llmHidden),
      task_tokens: fresh("task_tokens", this.llmHidden),
    };

    const scope = `lm4lv_adapters_${instanceCounter++}`;
    const params = {} as Record<AdapterParamName, tf.Variable>;
    for (const name of ADAPTER_PARAM_NAMES) {
      const values = initial?.[name] ?? drawn[name];
      const size = shapes[name].reduce((a, b) => a * b, 1);
      if (values.length !== size) {
        throw new Error(`LM4LVAdapters: ${name} has ${values.length} values, expected ${size} (shape ${JSON.stringify(shapes[name])})`);
      }
      // tf.js variable names are global: prefix them per instance, keep the stable name as key.
      const initialValue = tf.tensor(values, shapes[name], "float32");
      params[name] = tf.variable(initialValue, true, `${scope}/${name}`); // a copy: the initial tensor is freed
      initialValue.dispose();
    }
    this.params = params;
  }

  /** `[Dl, Dv]` PyTorch layout. */
  get adapterWeight(): tf.Variable<tf.Rank.R2> {
    return this.param("adapter.weight") as tf.Variable<tf.Rank.R2>;
  }
  get adapterBias(): tf.Variable<tf.Rank.R1> {
    return this.param("adapter.bias") as tf.Variable<tf.Rank.R1>;
  }
  /** `[Dv, Dl]` PyTorch layout. */
  get deAdapterWeight(): tf.Variable<tf.Rank.R2> {
    return this.param("de_adapter.weight") as tf.Variable<tf.Rank.R2>;
  }
  get deAdapterBias(): tf.Variable<tf.Rank.R1> {
    return this.param("de_adapter.bias") as tf.Variable<tf.Rank.R1>;
  }
  /** `[numTaskTokens, Dl]`. */
  get taskTokens(): tf.Variable<tf.Rank.R2> {
    return this.param("task_tokens") as tf.Variable<tf.Rank.R2>;
  }

  /** MAE features `[..., Dv]` (e.g. `[B, N, Dv]`) → LLM input embeddings `[..., Dl]`. */
  adapt<T extends tf.Tensor>(features: T): T {
    return linear(features, this.adapterWeight, this.adapterBias, "LM4LVAdapters.adapt");
  }

  /** Final-norm hidden states `[..., Dl]` → predicted MAE features `[..., Dv]`. */
  deAdapt<T extends tf.Tensor>(hidden: T): T {
    return linear(hidden, this.deAdapterWeight, this.deAdapterBias, "LM4LVAdapters.deAdapt");
  }

  /** The trainable variables, in `ADAPTER_PARAM_NAMES` order. */
  variables(): tf.Variable[] {
    return ADAPTER_PARAM_NAMES.map((name) => this.param(name));
  }

  /** The trainable variables under their stable (checkpoint) names. */
  namedVariables(): Record<AdapterParamName, tf.Variable> {
    this.check();
    return { ...this.params };
  }

  /** Copies of the current values, flat row-major, with their shapes. */
  snapshot(): Record<AdapterParamName, { shape: number[]; data: Float32Array }> {
    this.check();
    const out = {} as Record<AdapterParamName, { shape: number[]; data: Float32Array }>;
    for (const name of ADAPTER_PARAM_NAMES) {
      out[name] = { shape: [...this.params[name].shape], data: Float32Array.from(this.params[name].dataSync() as Float32Array) };
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const v of Object.values(this.params)) v.dispose();
    this.disposed = true;
  }

  private param(name: AdapterParamName): tf.Variable {
    this.check();
    return this.params[name];
  }

  private check(): void {
    if (this.disposed) throw new Error("these LM4LVAdapters were disposed");
  }
}
