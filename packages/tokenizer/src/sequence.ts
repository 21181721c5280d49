/**
 * The LM4LV multimodal sequence builder (spec §4, §5).
 *
 * A conversation is rendered with the "###" template into a flat list of items — text parts
 * (each marked "loss" or not), `<image>` placeholders and `<task>` placeholders:
 *
 *     <BOS> "### Human: " <human value> "\n### Assistant: " <gpt value> "\n###"
 *
 * With the reference values (human "<Img><image></Img> <task>", gpt "<Img><image></Img>"):
 *
 *     <BOS> "### Human: <Img>" [N × LQ] "</Img> " [10 × task] "\n### Assistant: <Img>" [N × HQ] "</Img>\n###"
 *
 * Tokenisation: the text between two placeholders (or sequence ends) is one piece, tokenised on
 * its own and concatenated, as LLaVA-style builders do. With the Llama tokenizer every piece
 * therefore gets SentencePiece's dummy "▁" prefix: "</Img> " starts with "▁</", and
 * "\n### Assistant: <Img>" starts with a lone "▁" token (29871) before the newline. This is what
 * Hugging Face's legacy LlamaTokenizer gives for `tokenizer(piece, add_special_tokens=False)`.
 * Special-token text inside values ("<s>", ...) is tokenised as plain text (`parseSpecial: false`).
 *
 * Loss inside a piece: a piece may hold a no-loss part followed by a loss part (e.g.
 * "\n### Assistant: " + "<Img>"). The first k tokens belong to the earlier part, where k is the
 * length of the common prefix of tokenize(piece) and tokenize(earlier text). A token straddling the
 * boundary ("▁<", whose "▁" is the space after "Assistant:") goes to the later part.
 *
 * Multi-turn: each Human/Assistant header is "### Role: " for the first templated turn, " Role: "
 * right after a gpt turn (which already ended with "\n###"), and "\n### Role: " otherwise. A gpt
 * turn's value and its closing "\n###" carry the text loss. A "none" turn is inserted verbatim,
 * with no header and no loss.
 *
 * task_type "simple": no template — the values are concatenated as they are (BOS still first unless
 * `addBos: false`); gpt values carry the loss, human/none values do not.
 */
import type { Tokenizer } from "./tokenizer.js";

export class SequenceError extends Error {}

export type Role = "human" | "gpt" | "none";

export interface ConversationTurn {
  from: Role;
  value: string;
}

/** One sample of the LM4LV data format (kept from the reference). */
export interface Conversation {
  /** Image paths; the k-th `<image>` placeholder takes image[k]. */
  image?: readonly string[];
  conversations: readonly ConversationTurn[];
  task_type?: "conversation" | "simple";
}

export interface SequenceOptions {
  /** Positions per `<image>` (1 + (image/patch)²; 197 for 224/16). */
  numVisualTokens?: number;
  /** Positions per `<task>` (10 learnable task tokens). */
  numTaskTokens?: number;
  /** Id written at placeholder positions in `inputIds` (their embeddings are replaced). Default 0. */
  placeholderId?: number;
  /** Start with the BOS id (default true). */
  addBos?: boolean;
}

export type Span =
  | { kind: "image"; role: Role; imageIndex: number; image: string | undefined; start: number; length: number }
  | { kind: "task"; role: Role; start: number; length: number };

/** The final-norm hidden state at `position` regresses MAE token `tokenIndex` of image `imageIndex`. */
export interface VisionTarget {
  position: number;
  imageIndex: number;
  tokenIndex: number;
}

/** A tokenised text piece, for inspection and tests. */
export interface TextPiece {
  text: string;
  start: number;
  ids: number[];
}

export interface BuiltSequence {
  /** Token ids; placeholder positions hold `placeholderId`. */
  inputIds: number[];
  /** Per position: the id to predict there (shift-by-one done by the loss), or -100 for no loss. */
  labels: number[];
  /** Image and task placeholder spans, in order. */
  spans: Span[];
  /** For every image in a gpt turn: positions start-1 .. start+N-2 → tokens 0 .. N-1. */
  visionTargets: VisionTarget[];
  pieces: TextPiece[];
}

export interface GenerationPrompt {
  inputIds: number[];
  spans: Span[];
  pieces: TextPiece[];
  /** Index into `image` of the image the model is to generate, when the response names one. */
  responseImageIndex: number | undefined;
}

export const IGNORE_INDEX = -100;
export const DEFAULT_NUM_VISUAL_TOKENS = 197;
export const DEFAULT_NUM_TASK_TOKENS = 10;
/** In a turn's value, the place of the next image of the sample (numVisualTokens positions). */
export const IMAGE_PLACEHOLDER = "<image>";
/** In a turn's value, the place of the task tokens (numTaskTokens positions). */
export const TASK_PLACEHOLDER = "<task>";
/** What the assistant side starts with before generating an image (spec §5). */
export const DEFAULT_RESPONSE_PREFIX = "<Img>";
/** The reference prompt values. */
export const DEFAULT_HUMAN_VALUE = `<Img>${IMAGE_PLACEHOLDER}</Img> ${TASK_PLACEHOLDER}`;
export const DEFAULT_GPT_VALUE = `<Img>${IMAGE_PLACEHOLDER}</Img>`;

const ROLE_NAMES: Record<"human" | "gpt", string> = { human: "Human", gpt: "Assistant" };
const PLACEHOLDER = new RegExp(`${IMAGE_PLACEHOLDER}|${TASK_PLACEHOLDER}`, "g");

type Item =
  | { kind: "text"; text: string; loss: boolean }
  | { kind: "image"; role: Role }
  | { kind: "task"; role: Role };

/** Build the training sequence of one sample. Never mutates `sample`. */
export function buildSequence(tokenizer: Tokenizer, sample: Conversation, options: SequenceOptions = {}): BuiltSequence {
  const opts = resolveOptions(options);
  const items = renderItems(sample, { closeLastGpt: true });
  const imageCount = items.filter((it) => it.kind === "image").length;
  const images = sample.image ?? [];
  checkImages(images, imageCount, true);
  const built = assemble(tokenizer, items, images, opts);

  const visionTargets: VisionTarget[] = [];
  for (const span of built.spans) {
    if (span.kind !== "image" || span.role !== "gpt") continue;
    if (span.start === 0) throw new SequenceError(`image ${span.imageIndex} is in a gpt turn at position 0: nothing precedes it to predict its first token`);
    for (let i = 0; i < span.length; i++) {
      visionTargets.push({ position: span.start - 1 + i, imageIndex: span.imageIndex, tokenIndex: i });
    }
  }
  return { ...built, visionTargets };
}

/**
 * The generation prompt of spec §5: the human turn(s) with the LQ image, then the assistant header
 * and the response text up to (not including) the response's first `<image>` — "<Img>" for the
 * reference values; turns after that gpt turn are dropped. Given a string, it is the LQ image path
 * with the reference human value. A conversation whose last human/gpt turn is a human turn gets
 * "\n### Assistant: " + `responsePrefix` (default "<Img>") appended.
 */
export function buildGenerationPrompt(
  tokenizer: Tokenizer,
  conversationOrLQ: Conversation | string,
  options: SequenceOptions & { responsePrefix?: string } = {},
): GenerationPrompt {
  const sample: Conversation =
    typeof conversationOrLQ === "string"
      ? { image: [conversationOrLQ], conversations: [{ from: "human", value: DEFAULT_HUMAN_VALUE }] }
      : conversationOrLQ;
  if (!sample || !Array.isArray(sample.conversations)) throw new SequenceError(`conversations must be an array`);
  const opts = resolveOptions(options);
  const turns = sample.conversations;
  // The response to complete: the last human/gpt turn if it is a gpt turn.
  const roles = turns.map((t) => t?.from);
  const lastTemplated = Math.max(roles.lastIndexOf("human"), roles.lastIndexOf("gpt"));
  const lastGpt = lastTemplated >= 0 && roles[lastTemplated] === "gpt" ? lastTemplated : -1;
  let prompt: ConversationTurn[];
  if (lastGpt >= 0) {
    const value = turns[lastGpt].value;
    if (typeof value !== "string") throw new SequenceError(`conversations[${lastGpt}].value must be a string`);
    const cut = value.indexOf(IMAGE_PLACEHOLDER);
    prompt = [...turns.slice(0, lastGpt), { from: "gpt", value: cut >= 0 ? value.slice(0, cut) : value }];
  } else {
    prompt = [...turns, { from: "gpt", value: options.responsePrefix ?? DEFAULT_RESPONSE_PREFIX }];
  }
  const items = renderItems({ ...sample, conversations: prompt }, { closeLastGpt: false });
  const imageCount = items.filter((it) => it.kind === "image").length;
  const images = sample.image ?? [];
  checkImages(images, imageCount, false);
  const built = assemble(tokenizer, items, images, opts);
  const hasResponseImage = lastGpt >= 0 && turns[lastGpt].value.includes(IMAGE_PLACEHOLDER);
  return {
    inputIds: built.inputIds,
    spans: built.spans,
    pieces: built.pieces,
    responseImageIndex: hasResponseImage ? imageCount : undefined,
  };
}

function resolveOptions(o: SequenceOptions): Required<SequenceOptions> {
  const numVisualTokens = o.numVisualTokens ?? DEFAULT_NUM_VISUAL_TOKENS;
  const numTaskTokens = o.numTaskTokens ?? DEFAULT_NUM_TASK_TOKENS;
  if (!Number.isInteger(numVisualTokens) || numVisualTokens < 1) throw new SequenceError(`numVisualTokens must be a positive integer, got ${numVisualTokens}`);
  if (!Number.isInteger(numTaskTokens) || numTaskTokens < 0) throw new SequenceError(`numTaskTokens must be a non-negative integer, got ${numTaskTokens}`);
  const placeholderId = o.placeholderId ?? 0;
  if (!Number.isInteger(placeholderId) || placeholderId < 0) throw new SequenceError(`placeholderId must be a non-negative integer, got ${placeholderId}`);
  return { numVisualTokens, numTaskTokens, placeholderId, addBos: o.addBos ?? true };
}

function checkImages(images: readonly string[], used: number, requireAllUsed: boolean): void {
  if (!Array.isArray(images)) throw new SequenceError(`image must be an array of paths`);
  if (used > images.length) {
    throw new SequenceError(`${used} ${IMAGE_PLACEHOLDER} placeholders but only ${images.length} image path(s)`);
  }
  if (requireAllUsed && used < images.length) {
    throw new SequenceError(`${images.length} image path(s) but only ${used} ${IMAGE_PLACEHOLDER} placeholder(s): image[${used}] is never used`);
  }
}

/** Conversation → template text parts and placeholders (no tokenisation yet). */
function renderItems(sample: Conversation, { closeLastGpt }: { closeLastGpt: boolean }): Item[] {
  if (!sample || typeof sample !== "object" || !Array.isArray(sample.conversations)) {
    throw new SequenceError(`a sample needs a "conversations" array`);
  }
  const taskType = sample.task_type ?? "conversation";
  if (taskType !== "conversation" && taskType !== "simple") {
    throw new SequenceError(`task_type must be "conversation" or "simple", got ${JSON.stringify(taskType)}`);
  }
  const turns = sample.conversations;
  const items: Item[] = [];
  let previous: "start" | "human" | "gpt" = "start";
  turns.forEach((turn, index) => {
    const where = `conversations[${index}]`;
    if (!turn || typeof turn !== "object") throw new SequenceError(`${where} must be an object {from, value}`);
    const value: unknown = turn.value;
    const from = turn.from as string;
    if (from !== "human" && from !== "gpt" && from !== "none") {
      throw new SequenceError(`${where}.from: unknown role ${JSON.stringify(from)} (expected "human", "gpt" or "none")`);
    }
    if (typeof value !== "string") throw new SequenceError(`${where}.value must be a string`);
    const loss = from === "gpt";
    if (taskType === "conversation" && from !== "none") {
      const sep = previous === "start" ? "### " : previous === "gpt" ? " " : "\n### ";
      items.push({ kind: "text", text: `${sep}${ROLE_NAMES[from]}: `, loss: false });
    }
    splitPlaceholders(value, from, loss, items);
    if (taskType === "conversation" && from === "gpt" && (closeLastGpt || index < turns.length - 1)) {
      items.push({ kind: "text", text: "\n###", loss: true });
    }
    if (from !== "none") previous = from;
  });
  return items;
}

function splitPlaceholders(value: string, role: Role, loss: boolean, out: Item[]): void {
  let last = 0;
  for (const m of value.matchAll(PLACEHOLDER)) {
    if (m.index! > last) out.push({ kind: "text", text: value.slice(last, m.index), loss });
    out.push(m[0] === IMAGE_PLACEHOLDER ? { kind: "image", role } : { kind: "task", role });
    last = m.index! + m[0].length;
  }
  if (last < value.length) out.push({ kind: "text", text: value.slice(last), loss });
}

/** Items → ids, labels, spans. Adjacent text parts form one piece, tokenised on its own. */
function assemble(
  tokenizer: Tokenizer,
  items: Item[],
  images: readonly string[],
  opts: Required<SequenceOptions>,
): Omit<BuiltSequence, "visionTargets"> {
  const inputIds: number[] = [];
  const labels: number[] = [];
  const spans: Span[] = [];
  const pieces: TextPiece[] = [];
  if (opts.addBos) {
    if (tokenizer.bosId === undefined) throw new SequenceError(`the tokenizer has no BOS token; pass addBos: false`);
    inputIds.push(tokenizer.bosId);
    labels.push(IGNORE_INDEX);
  }
  let imageIndex = 0;
  let i = 0;
  while (i < items.length) {
    const item = items[i];
    if (item.kind === "text") {
      const parts: { text: string; loss: boolean }[] = [];
      while (i < items.length && items[i].kind === "text") parts.push(items[i++] as { text: string; loss: boolean });
      const piece = tokenizePiece(tokenizer, parts);
      pieces.push({ text: parts.map((p) => p.text).join(""), start: inputIds.length, ids: piece.ids });
      inputIds.push(...piece.ids);
      labels.push(...piece.labels);
      continue;
    }
    const start = inputIds.length;
    const length = item.kind === "image" ? opts.numVisualTokens : opts.numTaskTokens;
    for (let k = 0; k < length; k++) {
      inputIds.push(opts.placeholderId);
      labels.push(IGNORE_INDEX);
    }
    if (item.kind === "image") {
      spans.push({ kind: "image", role: item.role, imageIndex, image: images[imageIndex], start, length });
      imageIndex++;
    } else {
      spans.push({ kind: "task", role: item.role, start, length });
    }
    i++;
  }
  return { inputIds, labels, spans, pieces };
}

/** Tokenise concatenated parts; label each token by the part it belongs to (see file comment). */
function tokenizePiece(tokenizer: Tokenizer, parts: { text: string; loss: boolean }[]): { ids: number[]; labels: number[] } {
  const encode = (text: string) => tokenizer.encode(text, { parseSpecial: false });
  const full = parts.map((p) => p.text).join("");
  const ids = encode(full);
  const labels: number[] = [];
  let textEnd = 0;
  for (let p = 0; p < parts.length; p++) {
    textEnd += parts[p].text.length;
    // Tokens [labels.length, end) belong to part p.
    let end = ids.length;
    if (p < parts.length - 1) {
      const prefix = encode(full.slice(0, textEnd));
      end = 0;
      while (end < prefix.length && end < ids.length && prefix[end] === ids[end]) end++;
      end = Math.max(end, labels.length);
    }
    for (let t = labels.length; t < end; t++) labels.push(parts[p].loss ? ids[t] : IGNORE_INDEX);
  }
  return { ids, labels };
}
