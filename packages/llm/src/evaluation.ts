/**
 * How good a trained LM is: held-out perplexity over non-overlapping windows, the add-one unigram
 * baseline on the same targets, and a greedy sample.
 */
import type { Tokenizer } from "@lm4lv/tokenizer";
import type { LlamaForCausalLM } from "./model.js";
import { lmLoss } from "./loss.js";

export interface PerplexityResult {
  /** Mean cross-entropy per predicted token (nats). */
  meanLoss: number;
  /** exp(meanLoss). */
  perplexity: number;
  /** Predicted tokens counted. */
  tokens: number;
}

/**
 * Held-out perplexity: the stream is cut into consecutive, non-overlapping windows of seqLen + 1
 * tokens (stride seqLen, so each token after the first is predicted once, with up to seqLen − 1
 * tokens of context); `maxWindows` keeps that many windows evenly spread over the stream.
 */
export function evaluatePerplexity(model: LlamaForCausalLM, tokens: Int32Array, options: { seqLen: number; batchSize?: number; maxWindows?: number }): PerplexityResult {
  const T = options.seqLen;
  const total = Math.floor((tokens.length - 1) / T);
  if (total < 1) throw new RangeError(`evaluatePerplexity: ${tokens.length} tokens, fewer than seqLen + 1 = ${T + 1}`);
  const n = Math.min(total, options.maxWindows ?? total);
  const windows = Array.from({ length: n }, (_, i) => Math.floor((i * total) / n));
  const B = options.batchSize ?? 8;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i += B) {
    const chunk = windows.slice(i, i + B);
    const ids = new Int32Array(chunk.length * (T + 1));
    chunk.forEach((w, b) => ids.set(tokens.subarray(w * T, w * T + T + 1), b * (T + 1)));
    const { loss } = lmLoss(model, { ids, batchSize: chunk.length, seqLen: T });
    sum += loss.dataSync()[0] * chunk.length * T;
    count += chunk.length * T;
    loss.dispose();
  }
  const meanLoss = sum / count;
  return { meanLoss, perplexity: Math.exp(meanLoss), tokens: count };
}

/**
 * Add-one smoothed unigram baseline: p(i) = (count_train(i) + 1) / (N_train + V), perplexity =
 * exp(−mean log p) over `evalTokens`.
 */
export function unigramPerplexity(trainTokens: Int32Array, evalTokens: Int32Array, vocabSize: number): PerplexityResult {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < trainTokens.length; i++) {
    const t = trainTokens[i];
    if (t < 0 || t >= vocabSize) throw new RangeError(`unigramPerplexity: train token ${i} = ${t} is outside the vocabulary (${vocabSize})`);
    counts[t] += 1;
  }
  const denom = trainTokens.length + vocabSize;
  let nll = 0;
  for (let i = 0; i < evalTokens.length; i++) {
    const t = evalTokens[i];
    if (t < 0 || t >= vocabSize) throw new RangeError(`unigramPerplexity: eval token ${i} = ${t} is outside the vocabulary (${vocabSize})`);
    nll -= Math.log((counts[t] + 1) / denom);
  }
  const meanLoss = nll / evalTokens.length;
  return { meanLoss, perplexity: Math.exp(meanLoss), tokens: evalTokens.length };
}

/** The tokens `evaluatePerplexity` predicts with the same options (for a like-for-like baseline). */
export function evaluatedTargets(tokens: Int32Array, options: { seqLen: number; maxWindows?: number }): Int32Array {
  const T = options.seqLen;
  const total = Math.floor((tokens.length - 1) / T);
  const n = Math.min(total, options.maxWindows ?? total);
  const out = new Int32Array(n * T);
  for (let i = 0; i < n; i++) {
    const w = Math.floor((i * total) / n);
    out.set(tokens.subarray(w * T + 1, w * T + T + 1), i * T);
  }
  return out;
}

/** Greedy continuation of `prompt` (BOS prepended), decoded; stops at EOS. */
export function greedySample(model: LlamaForCausalLM, tokenizer: Tokenizer, prompt: string, maxNewTokens: number): string {
  const ids = tokenizer.encode(prompt, { addBos: true, parseSpecial: false });
  const { tokens } = model.generateGreedy([ids], maxNewTokens, { eosTokenId: tokenizer.eosId });
  return tokenizer.decode(tokens[0], { skipSpecialTokens: true });
}
