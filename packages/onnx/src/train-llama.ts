/**
 * Training graphs over a Llama (`@lm4lv/llm`), for ONNX Runtime (see `training.ts`):
 *
 *   text LM      input_ids [B, T], labels [B·T, 1] → mean next-token cross-entropy
 *                (the loss of `lmLoss` in @lm4lv/llm); any weight may be trainable
 *   LM4LV        features [B, K, 1+N, Dv] (raw MAE features of the K images of each sample)
 *                → spec §4 loss CE + MSE with adapters and task tokens trainable, LLM frozen
 *                (the loss of `lm4lvForwardLoss` in @lm4lv/adapters)
 *
 * Both are cache-free passes over a fixed length T: the causal bias and the RoPE tables are
 * constants. Parameter names are those of the trainer's variables: Llama weights as the model's
 * `namedParameters()` / `readParameter` (HF names and layout, Linear weights `[out, in]`), adapter parameters as
 * in `adapters.safetensors` (`adapter.weight` `[Dl, Dv]`, ...).
 */
import type * as tf from "@tensorflow/tfjs";
import { transpose2d } from "@lm4lv/core";
import * as ort from "onnxruntime-node";
import type { EmbeddingNoise, LlamaForCausalLM, LmGradients, TokenBatch } from "@lm4lv/llm";
import { MASK_VALUE, embeddingNoiseDraws } from "@lm4lv/llm";
import { IGNORE_INDEX } from "@lm4lv/adapters";
import type { LossSample, SequenceLayout } from "@lm4lv/adapters";
import { OnnxGraph } from "./graph.js";
import { weightLinear } from "./layers.js";
import { llamaDecoder } from "./llama-export.js";
import type { DecoderContext } from "./llama-export.js";
import { OrtTrainingSession, finishTrainingGraph } from "./training.js";

function data(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

/** Causal bias and RoPE tables for positions 0..T−1, as constants (float32 angles, as tfjs computes them). */
function causalContext(g: OnnxGraph, lm: LlamaForCausalLM, T: number): DecoderContext {
  const hs = lm.config.head_dim;
  const bias = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) bias[q * T + k] = MASK_VALUE;
  const cos = new Float32Array(T * hs);
  const sin = new Float32Array(T * hs);
  for (let p = 0; p < T; p++) {
    for (let i = 0; i < hs / 2; i++) {
      const angle = Math.fround(p * lm.invFreq[i]);
      for (const j of [i, i + hs / 2]) {
        cos[p * hs + j] = Math.cos(angle);
        sin[p * hs + j] = Math.sin(angle);
      }
    }
  }
  return {
    bias: g.initializer("causal_bias", bias, [1, 1, T, T]),
    cos: g.initializer("rope_cos", cos, [1, 1, T, hs]),
    sin: g.initializer("rope_sin", sin, [1, 1, T, hs]),
  };
}

/** One parameter of the model, HF layout (a copy). */
function param(lm: LlamaForCausalLM, name: string): Float32Array {
  return lm.readParameter(name).data;
}

/** Logits `[M, V]` of hidden rows `[M, C]`: lm_head, or the (tied) embedding table transposed. */
function lmHead(g: OnnxGraph, lm: LlamaForCausalLM, hidden: string, embed?: string): string {
  const c = lm.config;
  if (!c.tie_word_embeddings) {
    const weight = () => param(lm, "lm_head.weight"); // [V, C]
    return weightLinear(g, hidden, { name: "lm_head", inDim: c.hidden_size, outDim: c.vocab_size, weight, kernel: () => transpose2d(weight(), c.vocab_size, c.hidden_size) }, "fp32");
  }
  const table = embed ?? g.param("model.embed_tokens.weight", param(lm, "model.embed_tokens.weight"), [c.vocab_size, c.hidden_size]);
  return g.op("MatMul", [hidden, g.op("Transpose", [table], { perm: [1, 0] })]); // [M, V]
}

/** Mean of −log softmax(logits)[label] over rows: logits [M, V], labels [M, 1] int64. */
function crossEntropy(g: OnnxGraph, logits: string, labels: string): string {
  const picked = g.op("GatherElements", [g.op("LogSoftmax", [logits], { axis: -1 }), labels], { axis: 1 }); // [M, 1]
  return g.op("Neg", [g.op("ReduceMean", [picked], { axes: [0, 1], keepdims: 0 })]); // []
}

export interface TextTrainingGraphOptions {
  batch: number;
  seqLen: number;
  /** Trainable parameter names (default: every weight, the trainer's variable names). */
  trainable: readonly string[];
  /** No backward pass (benchmarks). */
  forwardOnly?: boolean;
  /**
   * Input-embedding noise α (> 0): an input `embed_noise` [B, T, C] of standard-normal draws z, and
   * each embedding row x becomes x + α · rms(x) · z (`addEmbeddingNoise` of @lm4lv/llm).
   */
  embedNoise?: number;
}

/**
 * Text pre-training: input_ids [B, T] int64 and labels [B·T, 1] int64 (the next token of each
 * position) → loss = mean cross-entropy.
 */
export function buildLlamaTextTrainingGraph(lm: LlamaForCausalLM, opts: TextTrainingGraphOptions): OnnxGraph {
  const c = lm.config;
  const { batch: B, seqLen: T } = opts;
  const g = new OnnxGraph("llama_text_training", { trainable: opts.trainable });
  const ids = g.input("input_ids", "int64", [B, T]);
  const labels = g.input("labels", "int64", [B * T, 1]);
  const table = g.param("model.embed_tokens.weight", param(lm, "model.embed_tokens.weight"), [c.vocab_size, c.hidden_size]);
  let x = g.op("Gather", [table, ids], { axis: 0 }); // [B, T, C]
  if (opts.embedNoise !== undefined && opts.embedNoise > 0) {
    const z = g.input("embed_noise", "float32", [B, T, c.hidden_size]);
    const rms = g.op("Sqrt", [g.op("ReduceMean", [g.op("Mul", [x, x])], { axes: [-1], keepdims: 1 })]); // [B, T, 1]
    x = g.op("Add", [x, g.op("Mul", [g.op("Mul", [z, rms]), g.f32([opts.embedNoise])])]); // [B, T, C]
  }
  const hidden = llamaDecoder(g, lm, x, causalContext(g, lm, T)); // [B, T, C]
  const logits = lmHead(g, lm, g.op("Reshape", [hidden, g.i64([B * T, c.hidden_size])]), table); // [B·T, V]
  finishTrainingGraph(g, crossEntropy(g, logits, labels), {}, { forwardOnly: opts.forwardOnly });
  return g;
}

/** Adapter parameters as in `LM4LVAdapters` (PyTorch layout), for the graph's initial values. */
export interface AdapterParams {
  "adapter.weight": tf.Tensor; // [Dl, Dv]
  "adapter.bias": tf.Tensor; // [Dl]
  "de_adapter.weight": tf.Tensor; // [Dv, Dl]
  "de_adapter.bias": tf.Tensor; // [Dv]
  task_tokens: tf.Tensor; // [nTask, Dl]
}

export interface LM4LVTrainingGraphOptions {
  batch: number;
  /** Trainable names among the adapter parameters (default: all five). */
  trainable?: readonly string[];
  /** No backward pass (benchmarks). */
  forwardOnly?: boolean;
  /**
   * Exposure-bias remedy outside the paper's recipe: an input `input_noise` [B, 1+N, Dv] is added
   * to the features of the target image where they are fed as inputs (teacher forcing); the MSE
   * targets stay clean.
   */
  inputNoise?: boolean;
}

/** x [..., in] · Wᵀ + b for a PyTorch-layout weight parameter `[out, in]`. */
function torchLinear(g: OnnxGraph, x: string, w: string, b: string): string {
  return g.op("Add", [g.op("MatMul", [x, g.op("Transpose", [w], { perm: [1, 0] })]), b]);
}

/**
 * The LM4LV §4 training objective of one task layout (every sample of a batch shares it):
 * input `features` [B, K, 1+N, Dv] → loss = CE(response text) + MSE(de-adapted hidden states at
 * the vision targets, raw MAE features). Parts: `ce`, `mse`.
 */
export function buildLM4LVTrainingGraph(lm: LlamaForCausalLM, adapters: AdapterParams, layout: SequenceLayout & LossSample, opts: LM4LVTrainingGraphOptions): OnnxGraph {
  const c = lm.config;
  const B = opts.batch;
  const T = layout.inputIds.length;
  const [dl, dv] = adapters["adapter.weight"].shape;
  const nTask = adapters.task_tokens.shape[0];
  if (dl !== c.hidden_size) throw new Error(`LM4LV training graph: adapter.weight has shape [${adapters["adapter.weight"].shape}], the LM's hidden size is ${c.hidden_size}`);
  const images = layout.spans.filter((s) => s.kind === "image");
  const K = Math.max(...images.map((s) => (s.kind === "image" ? s.imageIndex : 0))) + 1;
  const N1 = images[0]?.length ?? 0;
  if (!images.length || images.some((s) => s.length !== N1)) throw new Error("LM4LV training graph: the layout needs image spans of one length");

  const g = new OnnxGraph("lm4lv_training", { trainable: opts.trainable ?? ["adapter.weight", "adapter.bias", "de_adapter.weight", "de_adapter.bias", "task_tokens"] });
  const features = g.input("features", "float32", [B, K, N1, dv]);
  const p = (name: keyof AdapterParams) => g.param(name, data(adapters[name]), [...adapters[name].shape]);
  const aw = p("adapter.weight"), ab = p("adapter.bias"), dw = p("de_adapter.weight"), db = p("de_adapter.bias");
  const taskTokens = p("task_tokens"); // [nTask, Dl]

  // Input embeddings [B, T, Dl]: text rows are constants (the layout's ids never change),
  // image spans are adapted features, the task span the task tokens.
  const table = param(lm, "model.embed_tokens.weight");
  const textRun = (from: number, to: number) => {
    const rows = new Float32Array((to - from) * dl);
    for (let t = from; t < to; t++) rows.set(table.subarray(layout.inputIds[t] * dl, (layout.inputIds[t] + 1) * dl), (t - from) * dl);
    const run = g.initializer(`text_embeds_${from}`, rows, [1, to - from, dl]);
    return g.op("Expand", [run, g.i64([B, to - from, dl])]); // [B, n, Dl]
  };
  const adapted = torchLinear(g, features, aw, ab); // [B, K, 1+N, Dl]
  const targetImage = layout.visionTargets[0]?.imageIndex;
  const noise = opts.inputNoise ? g.input("input_noise", "float32", [B, N1, dv]) : undefined;
  const parts: string[] = [];
  let pos = 0;
  for (const span of [...layout.spans].sort((a, b) => a.start - b.start)) {
    if (span.start > pos) parts.push(textRun(pos, span.start));
    if (span.kind === "image" && noise && span.imageIndex === targetImage) {
      const k = span.imageIndex;
      const img = g.op("Reshape", [g.op("Slice", [features, g.i64([k]), g.i64([k + 1]), g.i64([1])]), g.i64([B, N1, dv])]); // [B, 1+N, Dv]
      parts.push(torchLinear(g, g.op("Add", [img, noise]), aw, ab)); // [B, 1+N, Dl]
    } else if (span.kind === "image") {
      const k = span.imageIndex;
      const img = g.op("Slice", [adapted, g.i64([k]), g.i64([k + 1]), g.i64([1])]); // [B, 1, 1+N, Dl]
      parts.push(g.op("Reshape", [img, g.i64([B, N1, dl])]));
    } else {
      if (span.length !== nTask) throw new Error(`LM4LV training graph: task span has ${span.length} positions, there are ${nTask} task tokens`);
      parts.push(g.op("Expand", [g.op("Unsqueeze", [taskTokens, g.i64([0])]), g.i64([B, nTask, dl])]));
    }
    pos = span.start + span.length;
  }
  if (pos < T) parts.push(textRun(pos, T));
  const x = g.op("Concat", parts, { axis: 1 }); // [B, T, Dl]
  const hidden = g.op("Reshape", [llamaDecoder(g, lm, x, causalContext(g, lm, T)), g.i64([B * T, dl])]); // [B·T, Dl]

  // CE: row b·T + t predicts labels[t + 1].
  const ceRows: number[] = [];
  const ceLabels: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const label = layout.labels[t + 1];
      if (label === IGNORE_INDEX) continue;
      ceRows.push(b * T + t);
      ceLabels.push(label);
    }
  }
  // MSE: the hidden row at each vision target regresses feature row (b, image, token).
  const hiddenRows: number[] = [];
  const targetRows: number[] = [];
  for (let b = 0; b < B; b++) {
    for (const vt of layout.visionTargets) {
      hiddenRows.push(b * T + vt.position);
      targetRows.push((b * K + vt.imageIndex) * N1 + vt.tokenIndex);
    }
  }
  const rows = (name: string, v: number[]) => g.initializer(name, BigInt64Array.from(v.map(BigInt)), [v.length]);
  const ce = ceRows.length
    ? crossEntropy(g, lmHead(g, lm, g.op("Gather", [hidden, rows("ce_rows", ceRows)], { axis: 0 })), g.initializer("ce_labels", BigInt64Array.from(ceLabels.map(BigInt)), [ceLabels.length, 1]))
    : g.f32([0]);
  let mse = g.f32([0]);
  if (hiddenRows.length) {
    const predicted = torchLinear(g, g.op("Gather", [hidden, rows("vision_rows", hiddenRows)], { axis: 0 }), dw, db); // [R, Dv]
    const target = g.op("Gather", [g.op("Reshape", [features, g.i64([B * K * N1, dv])]), rows("target_rows", targetRows)], { axis: 0 }); // [R, Dv]
    const d = g.op("Sub", [predicted, target]);
    mse = g.op("ReduceMean", [g.op("Mul", [d, d])], { axes: [0, 1], keepdims: 0 });
  }
  finishTrainingGraph(g, g.op("Add", [ce, mse]), { ce, mse }, { forwardOnly: opts.forwardOnly });
  return g;
}

/**
 * `trainLm`'s gradients on ONNX Runtime (its `gradients` option): one text training graph per
 * batch shape (every variable trainable), fed the variables' current values (HF names and layout)
 * each step. Same loss as `lmLoss`.
 */
export async function ortLmGradients(model: LlamaForCausalLM, variables: Record<string, tf.Variable>, opts: { threads?: number; embeddingNoise?: EmbeddingNoise } = {}): Promise<LmGradients> {
  const names = Object.keys(variables);
  const noise = opts.embeddingNoise && opts.embeddingNoise.alpha > 0 ? opts.embeddingNoise : undefined;
  const sessions = new Map<string, Promise<OrtTrainingSession>>();
  const gradients = async ({ ids, batchSize: B, seqLen: T }: TokenBatch) => {
    const key = `${B}x${T}`;
    let session = sessions.get(key);
    if (!session) {
      session = OrtTrainingSession.create(buildLlamaTextTrainingGraph(model, { batch: B, seqLen: T, trainable: names, embedNoise: noise?.alpha }), { intraOpThreads: opts.threads });
      sessions.set(key, session);
    }
    const inputs = new BigInt64Array(B * T);
    const labels = new BigInt64Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = BigInt(ids[b * (T + 1) + t]);
        labels[b * T + t] = BigInt(ids[b * (T + 1) + t + 1]);
      }
    }
    const params = Object.fromEntries(names.map((n) => [n, { data: variables[n].dataSync() as Float32Array, shape: variables[n].shape }]));
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor("int64", inputs, [B, T]), labels: new ort.Tensor("int64", labels, [B * T, 1]) };
    if (noise) feeds.embed_noise = new ort.Tensor("float32", embeddingNoiseDraws({ ids, batchSize: B, seqLen: T }, model.hiddenSize, noise.seed), [B, T, model.hiddenSize]);
    return (await session).run(params, feeds);
  };
  const release = async () => {
    for (const s of sessions.values()) await (await s).release();
  };
  return { name: "onnxruntime", gradients, release };
}

/**
 * Analysis graph: inputs_embeds [B, T, C] → logits [B, T, V] and, per layer, the attention
 * probabilities `attention_<l>` [B, nh, T, T] of a causal pass (for induction-head scores).
 */
export function buildLlamaAttentionGraph(lm: LlamaForCausalLM, opts: { batch: number; seqLen: number }): OnnxGraph {
  const c = lm.config;
  const { batch: B, seqLen: T } = opts;
  const g = new OnnxGraph("llama_attention");
  const x = g.input("inputs_embeds", "float32", [B, T, c.hidden_size]);
  const ctx = causalContext(g, lm, T);
  ctx.attention = (l, probs) => g.output(probs, "float32", [B, c.num_attention_heads, T, T], `attention_${l}`);
  const hidden = llamaDecoder(g, lm, x, ctx); // [B, T, C]
  const logits = lmHead(g, lm, g.op("Reshape", [hidden, g.i64([B * T, c.hidden_size])])); // [B·T, V]
  g.output(g.op("Reshape", [logits, g.i64([B, T, c.vocab_size])]), "float32", [B, T, c.vocab_size], "logits");
  return g;
}
