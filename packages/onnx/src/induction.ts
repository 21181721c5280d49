/**
 * In-context copying of a causal LM, measured as in the induction-head literature (Olsson et al.
 * 2022; the TransformerLens/ARENA test):
 *
 *   sequences [BOS] + R + R, R = L uniform random tokens, a batch of them
 *   → per-token loss on the first copy (≈ ln V: nothing to copy) and on the second (≪ when the
 *     LM copies), and per head the mean attention from position i of the second copy to
 *     i − (L − 1), the token after the earlier occurrence of the current token (> 0.4: a clear
 *     induction head).
 *
 * `lm4lvCopyScores` applies the same attention measure to LM4LV training sequences: from the
 * output visual position k − 1 to the input visual token k (the offset copying needs; the spans are
 * `lm4lvImageSpans` of @lm4lv/pipeline).
 * Attention probabilities come from an ONNX Runtime analysis graph (`buildLlamaAttentionGraph`).
 */
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { Mulberry32, type RgbImage } from "@lm4lv/core";
import type { LlamaForCausalLM } from "@lm4lv/llm";
import { assembleInputsEmbedsSync } from "@lm4lv/adapters";
import { lm4lvImageSpans, type LM4LV } from "@lm4lv/pipeline";
import { sessionOptions } from "./session.js";
import { buildLlamaAttentionGraph } from "./train-llama.js";

export interface HeadScores {
  /** [layer][head]: mean attention along the measured offset. */
  heads: number[][];
  best: { layer: number; head: number; score: number };
}

export interface InductionResult extends HeadScores {
  length: number;
  batch: number;
  /** Mean next-token loss (nats) predicting tokens 2..L of the first copy. */
  firstCopyLoss: number;
  /** Mean next-token loss predicting tokens 2..L of the second copy. */
  secondCopyLoss: number;
  /** ln V, the loss of a uniform guess. */
  uniformLoss: number;
}

interface AttentionRun {
  logits: Float32Array; // [B, T, V]
  attention: Float32Array[]; // per layer [B, nh, T, T]
}

async function runAttention(lm: LlamaForCausalLM, embeds: Float32Array, B: number, T: number): Promise<AttentionRun> {
  const session = await ort.InferenceSession.create(buildLlamaAttentionGraph(lm, { batch: B, seqLen: T }).toBytes(), sessionOptions());
  try {
    const out = await session.run({ inputs_embeds: new ort.Tensor("float32", embeds, [B, T, lm.hiddenSize]) });
    const layers = lm.config.num_hidden_layers;
    return { logits: out.logits.data as Float32Array, attention: Array.from({ length: layers }, (_, l) => out[`attention_${l}`].data as Float32Array) };
  } finally {
    await session.release();
  }
}

/** Mean attention per head over (query, key) position pairs, the same pairs in every batch row. */
function headScores(run: AttentionRun, B: number, nh: number, T: number, pairs: [number, number][]): HeadScores {
  const heads = run.attention.map((a) =>
    Array.from({ length: nh }, (_, h) => {
      let s = 0;
      for (let b = 0; b < B; b++) for (const [q, k] of pairs) s += a[((b * nh + h) * T + q) * T + k];
      return s / (B * pairs.length);
    }),
  );
  let best = { layer: 0, head: 0, score: -1 };
  heads.forEach((row, layer) => row.forEach((score, head) => (score > best.score ? (best = { layer, head, score }) : null)));
  return { heads, best };
}

/** The standard induction test (see the file comment). Tokens are drawn from [firstToken, V − reserved). */
export async function inductionTest(lm: LlamaForCausalLM, opts: { length?: number; batch?: number; seed?: number; bosId?: number; firstToken?: number; reservedTop?: number } = {}): Promise<InductionResult> {
  const L = opts.length ?? 50;
  const B = opts.batch ?? 10;
  const V = lm.vocabSize;
  const lo = opts.firstToken ?? 3;
  const hi = V - (opts.reservedTop ?? 0);
  const rng = new Mulberry32(opts.seed ?? 0);
  const T = 1 + 2 * L;
  const ids = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    ids[b * T] = opts.bosId ?? 1;
    for (let i = 0; i < L; i++) {
      const t = lo + Math.floor(rng.next() * (hi - lo));
      ids[b * T + 1 + i] = t;
      ids[b * T + 1 + L + i] = t;
    }
  }
  const embeds = tf.tidy(() => lm.embedSync(tf.tensor2d(ids, [B, T], "int32")));
  const run = await runAttention(lm, embeds.dataSync() as Float32Array, B, T);
  embeds.dispose();
  // loss predicting token at position p + 1 from position p
  const nll = (p: number, b: number) => {
    const row = run.logits.subarray((b * T + p) * V, (b * T + p + 1) * V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
    return Math.log(sum) + max - row[ids[b * T + p + 1]];
  };
  let first = 0, second = 0;
  for (let b = 0; b < B; b++) {
    for (let i = 1; i < L; i++) {
      first += nll(i, b); // predicts first-copy token i + 1 (positions 2..L)
      second += nll(L + i, b); // predicts second-copy token i + 1
    }
  }
  // position i of the second copy holds token i − L; the earlier occurrence's successor is at i − L + 1
  const pairs: [number, number][] = [];
  for (let i = L + 1; i < T; i++) pairs.push([i, i - (L - 1)]);
  const scores = headScores(run, B, lm.config.num_attention_heads, T, pairs);
  return { length: L, batch: B, firstCopyLoss: first / (B * (L - 1)), secondCopyLoss: second / (B * (L - 1)), uniformLoss: Math.log(V), ...scores };
}

/**
 * The induction measure on LM4LV training sequences of `pairs` (images at the model's `imageSize`;
 * a tiled model makes a sequence of every pair of tiles): mean attention from output visual position
 * k − 1 to input visual token k, per head.
 */
export async function lm4lvCopyScores(model: LM4LV, pairs: readonly { lq: RgbImage; hq: RgbImage }[]): Promise<HeadScores> {
  const seqPairs = model.splitPairs(pairs);
  const lm = model.models.lm as LlamaForCausalLM;
  const seq = model.layout();
  const T = seq.inputIds.length;
  const [inp, outp] = lm4lvImageSpans(model);
  const embeds = tf.tidy(() => {
    const rows = seqPairs.map((p) => {
      const f = model.encodeSync([p.lq, p.hq]); // [2, 1+N, Dv]
      const [, N, D] = f.shape;
      const k = [0, 1].map((i) => f.slice([i, 0, 0], [1, N, D]).reshape([N, D]) as tf.Tensor2D);
      return assembleInputsEmbedsSync(lm, seq, k, model.adapters); // [1, T, Dl]
    });
    return tf.concat(rows, 0);
  });
  const run = await runAttention(lm, embeds.dataSync() as Float32Array, seqPairs.length, T);
  embeds.dispose();
  const qk: [number, number][] = [];
  for (let k = 1; k < inp.length; k++) qk.push([outp.start + k - 1, inp.start + k]);
  return headScores(run, seqPairs.length, lm.config.num_attention_heads, T, qk);
}
