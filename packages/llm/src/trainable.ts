/**
 * A Llama whose weights are trainable tf.Variables, keyed by the names the trainer, its
 * checkpoints and the ONNX training graphs use: HF names, except that linear weights are stored
 * as kernels `[in, out]` under `<module>.kernel` (the transposed HF `<module>.weight`).
 */
import * as tf from "@tensorflow/tfjs";
import { LlamaForCausalLM } from "./model.js";
import type { LlamaLayerWeights, LlamaWeights, Linear } from "./weights.js";

export interface TrainableLlama {
  model: LlamaForCausalLM;
  /**
   * The model's weights as variables, by name: HF names, except that linear weights are stored
   * as kernels (in, out) under `<module>.kernel` (the transposed HF `<module>.weight`).
   */
  variables: Record<string, tf.Variable>;
}

/** Wraps every weight of a model in a tf.Variable (the given tensors are disposed). */
export function makeTrainable(model: LlamaForCausalLM): TrainableLlama {
  const variables: Record<string, tf.Variable> = {};
  const v = <T extends tf.Tensor>(name: string, t: T): T => {
    const variable = tf.variable(t, true);
    t.dispose();
    variables[name] = variable;
    return variable as unknown as T;
  };
  const lin = (name: string, w: Linear): Linear => ({
    kernel: v(`${name}.kernel`, w.kernel),
    bias: w.bias ? v(`${name}.bias`, w.bias) : undefined,
  });
  const w = model.weights;
  const weights: LlamaWeights = {
    embedTokens: v("model.embed_tokens.weight", w.embedTokens),
    layers: w.layers.map((L, l): LlamaLayerWeights => {
      const p = `model.layers.${l}`;
      return {
        inputNorm: v(`${p}.input_layernorm.weight`, L.inputNorm),
        q: lin(`${p}.self_attn.q_proj`, L.q),
        k: lin(`${p}.self_attn.k_proj`, L.k),
        v: lin(`${p}.self_attn.v_proj`, L.v),
        o: lin(`${p}.self_attn.o_proj`, L.o),
        postAttentionNorm: v(`${p}.post_attention_layernorm.weight`, L.postAttentionNorm),
        gate: lin(`${p}.mlp.gate_proj`, L.gate),
        up: lin(`${p}.mlp.up_proj`, L.up),
        down: lin(`${p}.mlp.down_proj`, L.down),
      };
    }),
    norm: v("model.norm.weight", w.norm),
    lmHead: w.lmHead ? lin("lm_head", w.lmHead) : undefined,
  };
  return { model: new LlamaForCausalLM(model.config, weights), variables };
}

