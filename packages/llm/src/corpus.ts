/**
 * The text side of LM pre-training: the byte-level BPE tokenizer with the LM4LV template tokens,
 * corpus encoding (documents → one token stream, BOS … EOS per document), and batches of random
 * windows drawn with the trainer's RNG (so a resumed run draws the same windows), optionally with
 * verbatim repeats that teach in-context copying.
 *
 * Notation: B batch, T window length (seq_len).
 */
import { DEFAULT_GPT_VALUE, DEFAULT_HUMAN_VALUE, IMAGE_PLACEHOLDER, Tokenizer, trainBpe } from "@lm4lv/tokenizer";
import type { TrainRng } from "@lm4lv/train";

// ---------------------------------------------------------------------------------------------
// Tokenizer

/** A turn's reference value as text around its image: the image placeholder left out (its positions are visual tokens). */
const textAround = (value: string) => value.split(IMAGE_PLACEHOLDER).join("");

/**
 * The LM4LV prompt template (tokenizer's reference turns in the "###" template, the task placeholder
 * kept as text); mixed into the BPE corpus so its pieces become compact tokens.
 */
export const LM_TEMPLATE_TEXT = `### Human: ${textAround(DEFAULT_HUMAN_VALUE)}\n### Assistant: ${textAround(DEFAULT_GPT_VALUE)}\n###`;
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
/** Copies of the LM4LV template mixed into the BPE corpus, unless told otherwise. */
export const DEFAULT_TEMPLATE_COPIES = 200;

export function trainLmTokenizer(documents: readonly string[], options: { vocabSize: number; templateCopies?: number; maxLength?: number }): LmTokenizerFiles {
  const copies = options.templateCopies ?? DEFAULT_TEMPLATE_COPIES;
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
  /**
   * Several offset ranges (CLI "offset=83|40-110"): each window draws one range uniformly, then an
   * offset in it — a fixed LM4LV distance mixed with varying ones, which a copy by position alone
   * cannot serve. `minOffset`/`maxOffset` are then the bounds over all ranges. Absent for one range.
   */
  offsetRanges?: [number, number][];
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

/** Parses "p=0.5,len=20-70,gap=0-40[,copies=1-3][,random=0.5]" or "p=1,len=40-80,offset=83[|40-110]" (the CLI form of RepeatOptions). */
export function parseRepeatOptions(spec: string): RepeatOptions {
  const out: Record<string, string> = {};
  for (const part of spec.split(",")) {
    const [k, v] = part.split("=").map((x) => x.trim());
    if (!k || v === undefined) throw new Error(`--repeats "${spec}": expected p=P,len=A-B,gap=C-D`);
    out[k] = v;
  }
  const parseRange = (key: string, text: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(text);
    if (!m) throw new Error(`--repeats "${spec}": field "${key}" should be N or A-B${key === "offset" ? " (several joined by |)" : ""}`);
    return [Number(m[1]), Number(m[2] ?? m[1])];
  };
  const range = (key: string): [number, number] => parseRange(key, out[key] ?? "");
  const probability = Number(out.p);
  if (!(probability >= 0 && probability <= 1)) throw new Error(`--repeats "${spec}": field "p" should be in [0, 1]`);
  const [minLength, maxLength] = range("len");
  if ((out.gap === undefined) === (out.offset === undefined)) throw new Error(`--repeats "${spec}": give exactly one of "gap" and "offset"`);
  const [minGap, maxGap] = out.gap === undefined ? [0, 0] : range("gap");
  const offsetRanges = out.offset === undefined ? [] : out.offset.split("|").map((part) => parseRange("offset", part.trim()));
  for (const [lo, hi] of offsetRanges) if (hi < lo || lo < minLength) throw new Error(`--repeats "${spec}": field "offset" should be a range at least the shortest length`);
  const minOffset = Math.min(...offsetRanges.map(([lo]) => lo));
  const maxOffset = Math.max(...offsetRanges.map(([, hi]) => hi));
  const [minCopies, maxCopies] = out.copies === undefined ? [1, 1] : range("copies");
  if (minLength < 1 || maxLength < minLength || maxGap < minGap || minCopies < 1 || maxCopies < minCopies) throw new Error(`--repeats "${spec}": empty length, gap or copies range`);
  const random = out.random === undefined ? 0 : Number(out.random);
  if (!(random >= 0 && random <= 1)) throw new Error(`--repeats "${spec}": field "random" should be in [0, 1]`);
  const unknown = Object.keys(out).filter((k) => !["p", "len", "gap", "offset", "copies", "random"].includes(k));
  if (unknown.length) throw new Error(`--repeats "${spec}": unknown field "${unknown[0]}" (expected p, len, gap or offset, copies, random)`);
  return { probability, minLength, maxLength, minGap, maxGap, ...(out.offset === undefined ? {} : { minOffset, maxOffset }), ...(offsetRanges.length > 1 ? { offsetRanges } : {}), ...(out.copies === undefined ? {} : { minCopies, maxCopies }), ...(random > 0 ? { random } : {}) };
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
          // one range: no draw for its choice, so single-range runs keep their random stream
          const [lo, hi] = repeats.offsetRanges ? repeats.offsetRanges[rng.int(repeats.offsetRanges.length)]! : [repeats.minOffset!, repeats.maxOffset];
          const offset = lo + rng.int(hi - lo + 1);
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
