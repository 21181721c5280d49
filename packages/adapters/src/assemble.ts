/**
 * Input-embedding assembly (spec §4): a built sequence (ids with placeholder spans) plus the raw
 * MAE features of its images → the `inputsEmbeds` fed to the frozen LLM.
 *
 *   text positions  → lm.embed(ids)                (frozen table)
 *   image span k    → adapter(features of image k)  [1+N, Dv] → [1+N, Dl]
 *   task span       → task tokens                   [numTaskTokens, Dl]
 *
 * The result stays differentiable with respect to the adapter variables and the task tokens.
 * `assembleInputsEmbeds` embeds the text through any `CausalLM` (asynchronous, for generation
 * prompts); `assembleInputsEmbedsSync` and `assembleBatchInputsEmbeds` through a tfjs LM's
 * `embedSync`, inside `tf.tidy` / gradients (training).
 */
import * as tf from "@tensorflow/tfjs";
import type { CausalLM, SyncCausalLM } from "@lm4lv/core";
import type { LM4LVAdapters } from "./adapters.js";

/** A placeholder span, as produced by `@lm4lv/tokenizer`'s `buildSequence` / `buildGenerationPrompt`. */
export type SequenceSpan =
  | { kind: "image"; imageIndex: number; start: number; length: number }
  | { kind: "task"; start: number; length: number };

/** The part of a built sequence needed to assemble embeddings (a `BuiltSequence` fits). */
export interface SequenceLayout {
  inputIds: readonly number[];
  spans: readonly SequenceSpan[];
}

/**
 * The raw MAE features of one sample's images, indexed by `imageIndex`: a list of `[1+N, Dv]`
 * (or `[1, 1+N, Dv]`) tensors, or one `[numImages, 1+N, Dv]` tensor.
 */
export type ImageFeatures = readonly tf.Tensor[] | tf.Tensor3D;

/** Features of image k as `[rows, Dv]`. */
export function imageFeatureRows(features: ImageFeatures, k: number): tf.Tensor2D {
  const count = Array.isArray(features) ? features.length : (features as tf.Tensor3D).shape[0];
  if (!Number.isInteger(k) || k < 0 || k >= count) throw new Error(`image ${k} has no features: ${count} image feature tensor(s) given`);
  if (!Array.isArray(features)) {
    const t = features as tf.Tensor3D;
    return t.slice([k, 0, 0], [1, t.shape[1], t.shape[2]]).reshape([t.shape[1], t.shape[2]]);
  }
  const t = (features as readonly tf.Tensor[])[k];
  if (t.rank === 2) return t as tf.Tensor2D;
  if (t.rank === 3 && t.shape[0] === 1) return (t as tf.Tensor3D).reshape([t.shape[1] as number, t.shape[2] as number]);
  throw new Error(`features of image ${k} have shape ${JSON.stringify(t.shape)}, expected [1+N, Dv] or [1, 1+N, Dv]`);
}

/** Spans sorted by start, checked to lie inside the sequence without overlapping. */
function checkedSpans(seq: SequenceLayout, what: string): SequenceSpan[] {
  const T = seq.inputIds.length;
  const spans = [...seq.spans].sort((a, b) => a.start - b.start);
  let end = 0;
  for (const s of spans) {
    if (!Number.isInteger(s.start) || !Number.isInteger(s.length) || s.length < 1) {
      throw new Error(`${what}: ${s.kind} span at ${s.start} has invalid start/length (${s.start}, ${s.length})`);
    }
    if (s.start < end) throw new Error(`${what}: ${s.kind} span at ${s.start} overlaps the previous span (ending at ${end})`);
    if (s.start + s.length > T) throw new Error(`${what}: ${s.kind} span [${s.start}, ${s.start + s.length}) exceeds the sequence length ${T}`);
    end = s.start + s.length;
  }
  return spans;
}

/** The checks on the LM and the sequence shared by the assemblers; returns the spans by start. */
function checkedLayout(lm: { hiddenSize: number }, seq: SequenceLayout, adapters: LM4LVAdapters, what: string): SequenceSpan[] {
  if (lm.hiddenSize !== adapters.llmHidden) {
    throw new Error(`${what}: the LM's hidden size is ${lm.hiddenSize} but the adapters were built for llmHidden ${adapters.llmHidden}`);
  }
  if (seq.inputIds.length < 1) throw new Error(`${what}: empty sequence`);
  return checkedSpans(seq, what);
}

/** The sequence's ids as `[1, T]` int32. */
const idsTensor = (seq: SequenceLayout) => tf.tensor2d(Int32Array.from(seq.inputIds), [1, seq.inputIds.length], "int32");

/**
 * One sample → `[1, T, Dl]`, the text embedded by the LM's (asynchronous) `embed`: a generation
 * prompt on any engine. Each image span must have exactly as many positions as its image has
 * feature rows, and each task span exactly `adapters.numTaskTokens` positions.
 */
export async function assembleInputsEmbeds(
  lm: Pick<CausalLM, "embed" | "hiddenSize">,
  seq: SequenceLayout,
  imageFeatures: ImageFeatures,
  adapters: LM4LVAdapters,
): Promise<tf.Tensor3D> {
  const what = "assembleInputsEmbeds";
  const spans = checkedLayout(lm, seq, adapters, what);
  const ids = idsTensor(seq);
  let text: tf.Tensor3D;
  try {
    text = await lm.embed(ids); // (1, T, Dl)
  } finally {
    ids.dispose();
  }
  try {
    return fillSpans(text, seq, spans, imageFeatures, adapters, what);
  } finally {
    text.dispose();
  }
}

/**
 * `assembleInputsEmbeds` through a tfjs LM's `embedSync`: usable inside `tf.tidy` and gradients
 * (training), differentiable with respect to the adapters and the task tokens.
 */
export function assembleInputsEmbedsSync(
  lm: Pick<SyncCausalLM, "embedSync" | "hiddenSize">,
  seq: SequenceLayout,
  imageFeatures: ImageFeatures,
  adapters: LM4LVAdapters,
): tf.Tensor3D {
  const what = "assembleInputsEmbedsSync";
  const spans = checkedLayout(lm, seq, adapters, what);
  return tf.tidy(() => fillSpans(lm.embedSync(idsTensor(seq)), seq, spans, imageFeatures, adapters, what));
}

/** Text embeddings `[1, T, Dl]` of the whole sequence (placeholder rows unused) + the spans' rows → `[1, T, Dl]`. */
function fillSpans(textEmbeds: tf.Tensor3D, seq: SequenceLayout, spans: readonly SequenceSpan[], imageFeatures: ImageFeatures, adapters: LM4LVAdapters, what: string): tf.Tensor3D {
  const T = seq.inputIds.length;
  return tf.tidy(() => {
    const text = textEmbeds.reshape([T, adapters.llmHidden]) as tf.Tensor2D; // (T, Dl); placeholder rows unused
    const parts: tf.Tensor2D[] = [];
    let pos = 0;
    const textRun = (from: number, to: number) => {
      if (to > from) parts.push(text.slice([from, 0], [to - from, adapters.llmHidden])); // (n, Dl)
    };
    for (const span of spans) {
      textRun(pos, span.start);
      if (span.kind === "image") {
        const feats = imageFeatureRows(imageFeatures, span.imageIndex); // (1+N, Dv)
        if (feats.shape[0] !== span.length) {
          throw new Error(`${what}: image span ${span.imageIndex} at position ${span.start} has ${span.length} positions but image ${span.imageIndex} has ${feats.shape[0]} feature rows`);
        }
        if (feats.shape[1] !== adapters.visionHidden) {
          throw new Error(`${what}: image ${span.imageIndex} features have width ${feats.shape[1]}, the adapters expect visionHidden ${adapters.visionHidden}`);
        }
        parts.push(adapters.adapt(feats)); // (1+N, Dl)
      } else {
        if (span.length !== adapters.numTaskTokens) {
          throw new Error(`${what}: task span at position ${span.start} has ${span.length} positions but there are ${adapters.numTaskTokens} task tokens`);
        }
        parts.push(adapters.taskTokens); // (numTaskTokens, Dl)
      }
      pos = span.start + span.length;
    }
    textRun(pos, T);
    return tf.concat(parts, 0).expandDims(0) as tf.Tensor3D; // (1, T, Dl)
  });
}

/** Span kinds, starts and lengths (text ids may differ between samples). */
function layoutKey(seq: SequenceLayout): string {
  const spans = [...seq.spans].sort((a, b) => a.start - b.start);
  return `${seq.inputIds.length}|${spans.map((s) => `${s.kind}:${s.start}+${s.length}`).join(",")}`;
}

/**
 * Samples with the same layout (same length, same spans at the same positions — the case for
 * one task's training pairs) → `[B, T, Dl]`. `imageFeatures[b]` belongs to `seqs[b]`.
 */
export function assembleBatchInputsEmbeds(
  lm: Pick<SyncCausalLM, "embedSync" | "hiddenSize">,
  seqs: readonly SequenceLayout[],
  imageFeatures: readonly ImageFeatures[],
  adapters: LM4LVAdapters,
): tf.Tensor3D {
  const what = "assembleBatchInputsEmbeds";
  if (seqs.length < 1) throw new Error(`${what}: empty batch`);
  if (imageFeatures.length !== seqs.length) throw new Error(`${what}: ${seqs.length} sequences but ${imageFeatures.length} image feature sets`);
  const key = layoutKey(seqs[0]);
  seqs.forEach((s, b) => {
    if (layoutKey(s) !== key) {
      throw new Error(`${what}: sample ${b} has a different layout from sample 0 (length ${s.inputIds.length} vs ${seqs[0].inputIds.length}, or spans differ); batch only same-layout samples`);
    }
  });
  return tf.tidy(() => tf.concat(seqs.map((s, b) => assembleInputsEmbedsSync(lm, s, imageFeatures[b], adapters)), 0)) as tf.Tensor3D;
}
