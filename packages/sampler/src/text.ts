/**
 * Text generation with visual mode (spec §5, captioning-style use).
 *
 * Text mode: sample the next token from the last logits (greedy / temperature / top-k / top-p,
 * seeded), feed it with the KV cache. When the tokens written so far end with the ids of "<Img>"
 * (`imageStartIds`, given by the caller since they depend on the tokenizer), switch to visual mode:
 * the hidden state at the last "<Img>" token starts the visual loop of `generateVisualTokens`,
 * which writes `numVisualTokens` features; the last feature is fed back too, and text resumes
 * from the logits it produces (normally "</Img>").
 *
 * Stops on an EOS id (kept in `tokens`), a stop sequence (ids, or a string when `decode` is given),
 * or after `maxNewTokens` text tokens (visual tokens do not count).
 */
import * as tf from "@tensorflow/tfjs";
import type { CausalLM, KVCache } from "@lm4lv/core";
import { Mulberry32 as SamplerRng } from "@lm4lv/core";
import { selectToken } from "./processors.js";
import type { SamplingOptions } from "./processors.js";
import { DEFAULT_NUM_VISUAL_TOKENS, checkPrompt, stepLM, visualLoopWithCache } from "./visual.js";
import type { LMStep, VisualAdapters } from "./visual.js";

export interface GenerateTextOptions extends SamplingOptions {
  lm: CausalLM;
  /** `[1, T, Dl]` prompt embeddings; or give `promptIds`. */
  promptEmbeds?: tf.Tensor3D;
  /** Prompt token ids (embedded by the LM). */
  promptIds?: readonly number[];
  /** Text tokens to write at most. */
  maxNewTokens: number;
  /** Seed of the sampling RNG (default 0; unused when greedy). */
  seed?: number;
  /** Stop after writing this id (or any of these ids). */
  eosId?: number | readonly number[];
  /** Stop when the tokens end with these ids, or (with `decode`) when the text contains this string. */
  stopSequences?: readonly (string | readonly number[])[];
  /** ids → text; enables string stop sequences and `text` in the result. */
  decode?: (ids: number[]) => string;
  /** Ids of "<Img>": writing them switches to visual mode (needs `adapters`). */
  imageStartIds?: readonly number[];
  adapters?: VisualAdapters;
  /** Visual tokens per image (default 197). */
  numVisualTokens?: number;
  /** Called with each finished image `[1, numVisualTokens, Dv]` and its index; the result keeps it too. */
  onImage?: (features: tf.Tensor3D, index: number) => void;
}

export type FinishReason = "eos" | "stop" | "length";

export interface GenerateTextResult {
  /** Text tokens written (without the prompt; the EOS / stop ids included). */
  tokens: number[];
  /** decode(tokens), cut before a string stop sequence; only when `decode` was given. */
  text?: string;
  /** Images written in visual mode, each `[1, numVisualTokens, Dv]`; the caller disposes them. */
  images: tf.Tensor3D[];
  /** For each image, how many text tokens preceded it. */
  imageOffsets: number[];
  finishReason: FinishReason;
}

function endsWith(tokens: readonly number[], suffix: readonly number[]): boolean {
  if (suffix.length === 0 || suffix.length > tokens.length) return false;
  const off = tokens.length - suffix.length;
  return suffix.every((id, i) => tokens[off + i] === id);
}

/** Ids → their embeddings `[1, n, Dl]` through the LM. */
async function embedIds(lm: CausalLM, ids: readonly number[]): Promise<tf.Tensor3D> {
  const t = tf.tensor2d(Int32Array.from(ids), [1, ids.length], "int32");
  try {
    return await lm.embed(t);
  } finally {
    t.dispose();
  }
}

/** (1, 1, vocab) → Float32Array; disposes the tensor. */
function takeRow(logits: tf.Tensor3D): Float32Array {
  const row = logits.dataSync() as Float32Array;
  logits.dispose();
  return row;
}

export async function generateText(options: GenerateTextOptions): Promise<GenerateTextResult> {
  const { lm, maxNewTokens, decode } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  if (!!options.promptEmbeds === !!options.promptIds) throw new Error("generateText: give exactly one of promptEmbeds / promptIds");
  const stops = options.stopSequences ?? [];
  if (stops.some((s) => typeof s === "string") && !decode) throw new Error("generateText: string stop sequences need `decode`");
  const eos = new Set(options.eosId === undefined ? [] : typeof options.eosId === "number" ? [options.eosId] : options.eosId);
  const imageStart = options.imageStartIds ?? [];
  if (imageStart.length > 0 && !options.adapters) throw new Error("generateText: imageStartIds needs `adapters` for visual mode");
  const numVisual = options.numVisualTokens ?? DEFAULT_NUM_VISUAL_TOKENS;
  if (!Number.isInteger(numVisual) || numVisual < 1) throw new RangeError(`numVisualTokens must be a positive integer, got ${numVisual}`);
  const rng = new SamplerRng(options.seed ?? 0);

  const prompt = options.promptEmbeds ?? (await embedIds(lm, options.promptIds!));
  const tokens: number[] = [];
  const images: tf.Tensor3D[] = [];
  const imageOffsets: number[] = [];
  let finishReason: FinishReason = "length";
  let stopText: string | undefined;
  let cache: KVCache | undefined;
  try {
    checkPrompt(lm, prompt, "generateText");
    const first = await stepLM(lm, prompt, undefined, true); // (1, 1, ·) of the prompt's last position
    cache = first.cache!;
    let hidden: tf.Tensor3D | undefined = first.hidden;
    let logits = takeRow(first.logits);
    try {
      while (tokens.length < maxNewTokens) {
        const id = selectToken(logits, options, rng);
        tokens.push(id);
        if (eos.has(id)) { finishReason = "eos"; break; }
        const stop = stops.find((s) => (typeof s === "string" ? decode!(tokens).includes(s) : endsWith(tokens, s)));
        if (stop !== undefined) {
          finishReason = "stop";
          if (typeof stop === "string") stopText = stop;
          break;
        }
        if (tokens.length === maxNewTokens) break;

        const embedded = await embedIds(lm, [id]); // (1, 1, Dl)
        let step: LMStep;
        try {
          step = await stepLM(lm, embedded, cache, true);
        } finally {
          embedded.dispose();
        }
        hidden?.dispose();
        hidden = step.hidden;
        logits = takeRow(step.logits);

        if (imageStart.length > 0 && endsWith(tokens, imageStart)) {
          // Visual mode: the hidden state at the last "<Img>" token predicts visual token 0.
          const visual = await visualLoopWithCache(lm, options.adapters!, hidden, cache, numVisual, true);
          hidden = undefined; // consumed by the loop
          logits = takeRow(visual.logits!); // after the last feature was fed back
          images.push(visual.features);
          imageOffsets.push(tokens.length);
          options.onImage?.(visual.features, images.length - 1);
        }
      }
    } finally {
      hidden?.dispose();
    }
  } catch (e) {
    tf.dispose(images);
    throw e;
  } finally {
    cache?.dispose();
    if (prompt !== options.promptEmbeds) prompt.dispose();
  }

  const result: GenerateTextResult = { tokens, images, imageOffsets, finishReason };
  if (decode) {
    const text = decode(tokens);
    result.text = stopText !== undefined ? text.slice(0, text.indexOf(stopText)) : text;
  }
  return result;
}
