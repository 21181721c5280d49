/**
 * Where the Llama export reads its weights: a loaded tfjs model, or the safetensors files of an
 * HF folder read tensor by tensor when the graph is written (the streaming export: a 7B model is
 * never held in float32 as a whole).
 *
 * Names and layouts are HF's: `tensor("model.layers.0.mlp.up_proj.weight")` is `[out, in]`.
 * `kernel(weightName)` gives a linear weight transposed to `[in, out]` (the MatMul operand).
 * Values are float32 whatever the stored dtype (F32 / F16 / BF16 widen exactly).
 */
import { SafetensorsCheckpoint, transpose2d } from "@lm4lv/core";
import { LlamaForCausalLM, checkCheckpoint, computeInvFreq, llamaWeightTable, readLlamaConfig } from "@lm4lv/llm";
import type { LlamaConfig, WeightSpec } from "@lm4lv/llm";

export interface LlamaWeightSource {
  readonly config: LlamaConfig;
  /** RoPE inverse frequencies `[hs/2]` (rope scaling folded in). */
  readonly invFreq: Float32Array;
  /** One tensor by HF name, HF layout, float32; read when called. */
  tensor(name: string): Float32Array;
  /** A linear weight (`<name>.weight`, HF `[out, in]`) as a MatMul kernel `[in, out]`. */
  kernel(weightName: string): Float32Array;
  /** Releases open files (a no-op for a loaded model). */
  close(): void;
}

function specsByName(config: LlamaConfig): Map<string, WeightSpec> {
  return new Map(llamaWeightTable(config).map((s) => [s.name, s]));
}

function spec(specs: Map<string, WeightSpec>, name: string, where: string): WeightSpec {
  const s = specs.get(name);
  if (!s) throw new Error(`${where}: "${name}" is not a weight of this Llama config (see llamaWeightTable)`);
  return s;
}

/** The weights of a loaded `LlamaForCausalLM`, read one at a time with `readParameter` (HF names and layout). */
export function sourceFromModel(lm: LlamaForCausalLM): LlamaWeightSource {
  const { config } = lm;
  const specs = specsByName(config);
  const read = (name: string) => {
    spec(specs, name, "LlamaForCausalLM weights");
    return lm.readParameter(name).data;
  };
  return {
    config,
    invFreq: lm.invFreq,
    tensor: read,
    kernel(weightName) {
      const s = spec(specs, weightName, "LlamaForCausalLM weights");
      return transpose2d(read(weightName), s.shape[0], s.shape[1]);
    },
    close() {},
  };
}

/**
 * The weights of an HF Llama folder (`config.json` + `model.safetensors` or a sharded
 * `model.safetensors.index.json`), read lazily. Every expected name, shape and dtype is checked
 * against the header before anything is read; call `close()` when done.
 */
export function openLlamaSource(dir: string): LlamaWeightSource {
  const config = readLlamaConfig(dir);
  const ckpt = SafetensorsCheckpoint.open(dir);
  try {
    checkCheckpoint(config, ckpt);
  } catch (e) {
    ckpt.close();
    throw e;
  }
  const specs = specsByName(config);
  const read = (name: string) => {
    // a tied checkpoint has no lm_head: callers ask for the embedding table instead
    spec(specs, name, ckpt.source);
    return ckpt.readFloat32(name);
  };
  return {
    config,
    invFreq: computeInvFreq(config),
    tensor: read,
    kernel(weightName) {
      const s = spec(specs, weightName, ckpt.source);
      if (s.shape.length !== 2) throw new Error(`${ckpt.source}: "${weightName}" has shape [${s.shape}], not a matrix`);
      return transpose2d(read(weightName), s.shape[0], s.shape[1]);
    },
    close: () => ckpt.close(),
  };
}

/** A source for what the export was given: a loaded model or a source already. */
export function asWeightSource(lm: LlamaForCausalLM | LlamaWeightSource): LlamaWeightSource {
  return lm instanceof LlamaForCausalLM ? sourceFromModel(lm) : lm;
}
