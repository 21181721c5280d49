/**
 * Where the Llama export reads its weights: a loaded tfjs model, or the safetensors files of an
 * HF folder read tensor by tensor when the graph is written (the streaming export: a 7B model is
 * never held in float32 as a whole).
 *
 * Names and layouts are HF's: `tensor("model.layers.0.mlp.up_proj.weight")` is `[out, in]`.
 * `kernel(weightName)` gives a linear weight transposed to `[in, out]` (the MatMul operand).
 * Values are float32 whatever the stored dtype (F32 / F16 / BF16 widen exactly).
 */
import * as tf from "@tensorflow/tfjs";
import { SafetensorsCheckpoint } from "@lm4lv/core";
import { LlamaForCausalLM, checkCheckpoint, computeInvFreq, llamaWeightTable, readLlamaConfig } from "@lm4lv/llm";
import type { LlamaConfig, Linear, WeightSpec } from "@lm4lv/llm";

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

/** `[rows, cols]` row-major → `[cols, rows]`. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  if (a.length !== rows * cols) throw new Error(`transpose2d: ${a.length} values, [${rows}, ${cols}] needs ${rows * cols}`);
  const out = new Float32Array(a.length);
  // blocked, so both sides stay in cache on large matrices
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = a[r * cols + c];
    }
  }
  return out;
}

function specsByName(config: LlamaConfig): Map<string, WeightSpec> {
  return new Map(llamaWeightTable(config).map((s) => [s.name, s]));
}

function spec(specs: Map<string, WeightSpec>, name: string, where: string): WeightSpec {
  const s = specs.get(name);
  if (!s) throw new Error(`${where}: "${name}" is not a weight of this Llama config (see llamaWeightTable)`);
  return s;
}

/** The weights of a loaded `LlamaForCausalLM` (tfjs tensors; linear weights held as kernels). */
export function sourceFromModel(lm: LlamaForCausalLM): LlamaWeightSource {
  const { config } = lm;
  const specs = specsByName(config);
  const byName = new Map<string, tf.Tensor>();
  const w = lm.weights;
  byName.set("model.embed_tokens.weight", w.embedTokens);
  byName.set("model.norm.weight", w.norm);
  const lin = (name: string, x: Linear) => {
    byName.set(`${name}.weight`, x.kernel); // held [in, out]
    if (x.bias) byName.set(`${name}.bias`, x.bias);
  };
  w.layers.forEach((L, l) => {
    const p = `model.layers.${l}`;
    byName.set(`${p}.input_layernorm.weight`, L.inputNorm);
    byName.set(`${p}.post_attention_layernorm.weight`, L.postAttentionNorm);
    lin(`${p}.self_attn.q_proj`, L.q);
    lin(`${p}.self_attn.k_proj`, L.k);
    lin(`${p}.self_attn.v_proj`, L.v);
    lin(`${p}.self_attn.o_proj`, L.o);
    lin(`${p}.mlp.gate_proj`, L.gate);
    lin(`${p}.mlp.up_proj`, L.up);
    lin(`${p}.mlp.down_proj`, L.down);
  });
  if (w.lmHead) lin("lm_head", w.lmHead);
  const get = (name: string) => {
    const t = byName.get(name);
    if (!t) throw new Error(`LlamaForCausalLM weights: no tensor "${name}"`);
    return t;
  };
  // a copy: the tfjs buffer belongs to the model
  const copy = (t: tf.Tensor) => Float32Array.from(t.dataSync() as Float32Array);
  return {
    config,
    invFreq: lm.invFreq,
    tensor(name) {
      const s = spec(specs, name, "LlamaForCausalLM weights");
      const t = get(name);
      if (s.role !== "linear") return copy(t);
      const hf = tf.tidy(() => tf.transpose(t)); // kernel [in, out] → [out, in]
      try {
        return copy(hf);
      } finally {
        hf.dispose();
      }
    },
    kernel(weightName) {
      const s = spec(specs, weightName, "LlamaForCausalLM weights");
      if (s.role === "linear") return copy(get(weightName));
      return transpose2d(copy(get(weightName)), s.shape[0], s.shape[1]); // the tied embedding table
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
