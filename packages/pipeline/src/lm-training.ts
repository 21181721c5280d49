/**
 * Text pre-training of a small Llama LM: the pieces `pnpm train lm` composes.
 *
 * In order: tokenizer (byte-level BPE with the LM4LV template tokens) → corpus encoding
 * (documents → one token stream, BOS … EOS per document) → trainable model (weights as
 * tf.Variables) → batches (random windows drawn with the trainer's RNG, so a resumed run
 * draws the same windows) → next-token cross-entropy → held-out perplexity, the add-one
 * unigram baseline, and a greedy sample.
 *
 * Notation: B batch, T window length (seq_len), V vocabulary, C hidden.
 */
import * as tf from "@tensorflow/tfjs";
import { LlamaForCausalLM, parseLlamaConfig } from "@lm4lv/llm";
import type { LlamaConfig } from "@lm4lv/llm";
import { Tokenizer, trainBpe } from "@lm4lv/tokenizer";
import { transposeTensorData } from "@lm4lv/train";
import type { FloatTensorData, GradientFn, TrainRng } from "@lm4lv/train";

// ---------------------------------------------------------------------------------------------
// Tokenizer

/** The LM4LV prompt template; mixed into the BPE corpus so its pieces become compact tokens. */
export const LM_TEMPLATE_TEXT = "### Human: <Img></Img> <task>\n### Assistant: <Img></Img>\n###";
/** Whole (non-special) tokens of the LM4LV sequences. */
export const LM_ADDED_TOKENS = ["<Img>", "</Img>"];
export const LM_SPECIAL_TOKENS = { unk: "<unk>", bos: "<s>", eos: "</s>" } as const;

export interface LmTokenizerFiles {
  /** The `tokenizer.json` object. */
  tokenizerJson: Record<string, unknown>;
  /** The `tokenizer_config.json` object (BOS/EOS/UNK named). */
  tokenizerConfig: Record<string, unknown>;
}

/**
 * Trains the byte-level BPE of the small LM on `documents`, with `templateCopies` copies of the
 * LM4LV template mixed in ("###", " Human", " Assistant" become single tokens) and "<Img>"/"</Img>"
 * as added tokens.
 */
export function trainLmTokenizer(documents: readonly string[], options: { vocabSize: number; templateCopies?: number; maxLength?: number }): LmTokenizerFiles {
  const copies = options.templateCopies ?? 200;
  const texts = [...documents, ...Array<string>(copies).fill(LM_TEMPLATE_TEXT)];
  const tokenizerJson = trainBpe(texts, {
    vocabSize: options.vocabSize,
    specialTokens: [LM_SPECIAL_TOKENS.unk, LM_SPECIAL_TOKENS.bos, LM_SPECIAL_TOKENS.eos],
    addedTokens: LM_ADDED_TOKENS,
  });
  const tokenizerConfig = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: LM_SPECIAL_TOKENS.bos,
    eos_token: LM_SPECIAL_TOKENS.eos,
    unk_token: LM_SPECIAL_TOKENS.unk,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: options.maxLength ?? 512,
  };
  return { tokenizerJson, tokenizerConfig };
}

/** Splits a corpus file's text into documents (separated by blank lines), dropping empty ones. */
export function splitDocuments(text: string): string[] {
  return text.split(/\n\s*\n/).map((d) => d.trim()).filter((d) => d.length > 0);
}

/** Encodes documents into one stream: BOS doc EOS BOS doc EOS … (Int32Array). */
export function encodeCorpus(tokenizer: Tokenizer, documents: readonly string[]): Int32Array {
  const parts: number[][] = [];
  let n = 0;
  for (const doc of documents) {
    const ids = tokenizer.encode(doc, { addBos: true, addEos: true, parseSpecial: false });
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Trainable model

/** A Llama whose every weight is a trainable variable, by HF name (HF layout). */
export interface TrainableLlama {
  model: LlamaForCausalLM;
  variables: Record<string, tf.Variable>;
}

/** A randomly initialised Llama (HF-style init, deterministic per seed) with trainable weights. */
export function trainableLlama(config: LlamaConfig | Record<string, unknown>, seed = 0): TrainableLlama {
  const model = LlamaForCausalLM.fromConfig(parseLlamaConfig(config as Record<string, unknown>, "trainableLlama"), seed);
  return { model, variables: model.trainableParameters() };
}

/**
 * Checkpoints of format lm4lv-train/1 held each Linear weight as a kernel `[in, out]` named
 * `<module>.kernel`; today's variables are `<module>.weight` `[out, in]` (the trainer's `upgradeLegacy`).
 */
export function legacyLlamaTensor(name: string, t: FloatTensorData): [string, FloatTensorData] {
  return name.endsWith(".kernel") ? [`${name.slice(0, -".kernel".length)}.weight`, transposeTensorData(t)] : [name, t];
}

/** Number of trainable parameters (a tied embedding counts once). */
export function parameterCount(variables: Record<string, tf.Variable>): number {
  return Object.values(variables).reduce((n, v) => n + v.size, 0);
}

// ---------------------------------------------------------------------------------------------
// Batches

/** B windows of T + 1 consecutive tokens: inputs are [.., :T], targets [.., 1:]. */
export interface TokenBatch {
  /** (B, T + 1) row-major. */
  ids: Int32Array;
  batchSize: number;
  seqLen: number;
}

/**
 * Verbatim repeats inserted into text windows: a span of the window is copied again further on,
 * so the LM sees in-context copying at chosen distances (LM4LV copies a visual token from one
 * image length back). Text only: the inserted tokens are the window's own text.
 */
export interface RepeatOptions {
  /** Probability that a window gets one repeat. */
  probability: number;
  /** Length of the repeated span, in tokens (inclusive range). */
  minLength: number;
  maxLength: number;
  /** Tokens between the end of the span and its copy (inclusive range). */
  minGap: number;
  maxGap: number;
  /**
   * Instead of a gap: the distance from the span's first token to its copy's first token
   * (inclusive range; the gap is then offset − length, so lengths above the offset are not drawn).
   * A fixed offset is the LM4LV layout's: output visual token k sits a constant distance after
   * input visual token k.
   */
  minOffset?: number;
  maxOffset?: number;
  /** Consecutive copies of the span (inclusive range; default 1–1). */
  minCopies?: number;
  maxCopies?: number;
  /**
   * Fraction of the repeated spans whose content is replaced (in the original and every copy)
   * by uniform random token ids from `randomTokens` — synthetic token strings, no image data;
   * it trains copying of arbitrary tokens, not only of the corpus' frequent ones. Default 0.
   */
  random?: number;
}

/** Parses "p=0.5,len=20-70,gap=0-40[,copies=1-3][,random=0.5]" or "p=1,len=40-80,offset=83" (the CLI form of RepeatOptions). */
export function parseRepeatOptions(spec: string): RepeatOptions {
  const out: Record<string, string> = {};
  for (const part of spec.split(",")) {
    const [k, v] = part.split("=").map((x) => x.trim());
    if (!k || v === undefined) throw new Error(`--repeats "${spec}": expected p=P,len=A-B,gap=C-D`);
    out[k] = v;
  }
  const range = (key: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(out[key] ?? "");
    if (!m) throw new Error(`--repeats "${spec}": field "${key}" should be N or A-B`);
    return [Number(m[1]), Number(m[2] ?? m[1])];
  };
  const probability = Number(out.p);
  if (!(probability >= 0 && probability <= 1)) throw new Error(`--repeats "${spec}": field "p" should be in [0, 1]`);
  const [minLength, maxLength] = range("len");
  if ((out.gap === undefined) === (out.offset === undefined)) throw new Error(`--repeats "${spec}": give exactly one of "gap" and "offset"`);
  const [minGap, maxGap] = out.gap === undefined ? [0, 0] : range("gap");
  const [minOffset, maxOffset] = out.offset === undefined ? [0, 0] : range("offset");
  if (out.offset !== undefined && (maxOffset < minOffset || minOffset < minLength)) throw new Error(`--repeats "${spec}": field "offset" should be a range at least the shortest length`);
  const [minCopies, maxCopies] = out.copies === undefined ? [1, 1] : range("copies");
  if (minLength < 1 || maxLength < minLength || maxGap < minGap || minCopies < 1 || maxCopies < minCopies) throw new Error(`--repeats "${spec}": empty length, gap or copies range`);
  const random = out.random === undefined ? 0 : Number(out.random);
  if (!(random >= 0 && random <= 1)) throw new Error(`--repeats "${spec}": field "random" should be in [0, 1]`);
  const unknown = Object.keys(out).filter((k) => !["p", "len", "gap", "offset", "copies", "random"].includes(k));
  if (unknown.length) throw new Error(`--repeats "${spec}": unknown field "${unknown[0]}" (expected p, len, gap or offset, copies, random)`);
  return { probability, minLength, maxLength, minGap, maxGap, ...(out.offset === undefined ? {} : { minOffset, maxOffset }), ...(out.copies === undefined ? {} : { minCopies, maxCopies }), ...(random > 0 ? { random } : {}) };
}

/**
 * Batch function for the trainer: each batch is `batchSize` windows of `seqLen + 1` tokens at
 * uniformly random starts in `tokens`, drawn from the trainer's RNG (saved in checkpoints, so a
 * resumed run draws the same windows). With `repeats`, a window may be built from fewer text
 * tokens with one span inserted again after a gap (see RepeatOptions).
 */
export function tokenWindowBatches(tokens: Int32Array, options: { batchSize: number; seqLen: number; repeats?: RepeatOptions; /** ids [lo, hi) drawn by `repeats.random` */ randomTokens?: [number, number] }): (step: number, rng: TrainRng) => TokenBatch {
  const { batchSize: B, seqLen: T, repeats, randomTokens } = options;
  if (repeats?.random && !(randomTokens && Number.isInteger(randomTokens[0]) && randomTokens[1] > randomTokens[0])) throw new RangeError(`tokenWindowBatches: repeats.random needs randomTokens [lo, hi) with hi > lo, got ${JSON.stringify(randomTokens)}`);
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`tokenWindowBatches: batchSize must be a positive integer, got ${B}`);
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`tokenWindowBatches: seqLen must be a positive integer, got ${T}`);
  const starts = tokens.length - (T + 1) + 1;
  if (starts < 1) throw new RangeError(`tokenWindowBatches: the corpus has ${tokens.length} tokens, fewer than seqLen + 1 = ${T + 1}`);
  const maxCopies = repeats?.maxCopies ?? 1;
  if (repeats?.maxOffset !== undefined && repeats.maxOffset + maxCopies * Math.min(repeats.maxLength, repeats.maxOffset) > T + 1) throw new RangeError(`tokenWindowBatches: a copy ${repeats.maxOffset} tokens after its span (${maxCopies} cop${maxCopies > 1 ? "ies" : "y"}) does not fit a window of ${T + 1}`);
  if (repeats && repeats.maxOffset === undefined && (1 + maxCopies) * repeats.maxLength + repeats.maxGap > T + 1) throw new RangeError(`tokenWindowBatches: ${maxCopies} cop${maxCopies > 1 ? "ies" : "y"} of ${repeats.maxLength} tokens after a gap of ${repeats.maxGap} do not fit a window of ${T + 1}`);
  return (_step, rng) => {
    const ids = new Int32Array(B * (T + 1));
    for (let b = 0; b < B; b++) {
      const row = ids.subarray(b * (T + 1), (b + 1) * (T + 1));
      if (repeats && rng.uniform() < repeats.probability) {
        let len: number, gap: number;
        if (repeats.maxOffset !== undefined) {
          const offset = repeats.minOffset! + rng.int(repeats.maxOffset - repeats.minOffset! + 1);
          const maxLen = Math.min(repeats.maxLength, offset);
          len = repeats.minLength + rng.int(maxLen - repeats.minLength + 1);
          gap = offset - len;
        } else {
          len = repeats.minLength + rng.int(repeats.maxLength - repeats.minLength + 1);
          gap = repeats.minGap + rng.int(repeats.maxGap - repeats.minGap + 1);
        }
        const copies = repeats.maxCopies === undefined ? 1 : (repeats.minCopies ?? 1) + rng.int(repeats.maxCopies - (repeats.minCopies ?? 1) + 1);
        const n = T + 1 - copies * len; // text tokens; the copies fill the rest
        const s = rng.int(tokens.length - n + 1);
        const text = tokens.subarray(s, s + n);
        const from = rng.int(n - len - gap + 1); // span [from, from + len), copies inserted at from + len + gap
        const at = from + len + gap;
        row.set(text.subarray(0, at), 0);
        let span = text.subarray(from, from + len);
        if (repeats.random && rng.uniform() < repeats.random) {
          const [lo, hi] = randomTokens!;
          span = Int32Array.from({ length: len }, () => lo + rng.int(hi - lo));
          row.set(span, from);
        }
        for (let c = 0; c < copies; c++) row.set(span, at + c * len);
        row.set(text.subarray(at), at + copies * len);
      } else {
        const s = rng.int(starts);
        row.set(tokens.subarray(s, s + T + 1));
      }
    }
    return { ids, batchSize: B, seqLen: T };
  };
}

// ---------------------------------------------------------------------------------------------
// Loss

/**
 * Embedding lookup table[ids]: table (V, C), ids (B·T) → (B, T, C). Its gradient (a scatter-add)
 * runs on wasm through the UnsortedSegmentSum kernel that @lm4lv/core's initBackend registers.
 */
export function embedLookup(table: tf.Tensor2D, ids: Int32Array, B: number, T: number): tf.Tensor3D {
  const C = table.shape[1];
  return tf.tidy(() => tf.gather(table, tf.tensor1d(ids, "int32")).reshape([B, T, C]) as tf.Tensor3D); // (B, T, C)
}

/**
 * Per-position next-token cross-entropy (nats): logits (N, V), targets (N) → (N).
 * ce = logsumexp(logits) − logits[target].
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const lse = tf.logSumExp(logits, -1); // (N)
    const picked = tf.sum(tf.mul(logits, tf.oneHot(targets.toInt(), V)), -1); // (N)
    return tf.sub(lse, picked) as tf.Tensor1D;
  });
}

/** Mean next-token cross-entropy of a batch under the model (a differentiable scalar). */
export function lmLoss(model: LlamaForCausalLM, batch: TokenBatch): { loss: tf.Scalar } {
  const { ids, batchSize: B, seqLen: T } = batch;
  const loss = tf.tidy(() => {
    const inputIds = new Int32Array(B * T);
    const targetIds = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      inputIds.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      targetIds.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    const inputsEmbeds = embedLookup(model.inputEmbeddings(), inputIds, B, T); // (B, T, C)
    const targets = tf.tensor1d(targetIds, "int32"); // (B·T)
    const { logits, lastHiddenState } = model.forwardSync({ inputsEmbeds }); // (B, T, V)
    lastHiddenState.dispose();
    const ce = tokenCrossEntropy(logits.reshape([B * T, model.vocabSize]), targets); // (B·T)
    return tf.mean(ce) as tf.Scalar;
  });
  return { loss };
}

/**
 * Text-LM gradients on ONNX Runtime: one training graph (every variable trainable) per batch
 * shape, fed the variables' current values each step. Same loss as `lmLoss`.
 */
export async function ortLmGradients(model: LlamaForCausalLM, variables: Record<string, tf.Variable>, opts: { threads?: number } = {}): Promise<{ gradients: GradientFn<TokenBatch>; release: () => Promise<void> }> {
  const onnx = await import("@lm4lv/onnx");
  const ort = await import("onnxruntime-node");
  const names = Object.keys(variables);
  const sessions = new Map<string, Promise<import("@lm4lv/onnx").OrtTrainingSession>>();
  const gradients: GradientFn<TokenBatch> = async ({ ids, batchSize: B, seqLen: T }) => {
    const key = `${B}x${T}`;
    let session = sessions.get(key);
    if (!session) {
      session = onnx.OrtTrainingSession.create(onnx.buildLlamaTextTrainingGraph(model, { batch: B, seqLen: T, trainable: names }), { intraOpThreads: opts.threads });
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
    return (await session).run(params, { input_ids: new ort.Tensor("int64", inputs, [B, T]), labels: new ort.Tensor("int64", labels, [B * T, 1]) });
  };
  const release = async () => {
    for (const s of sessions.values()) await (await s).release();
  };
  return { gradients, release };
}

// ---------------------------------------------------------------------------------------------
// Evaluation

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
