/**
 * LM4LV datasets (spec §4 data format).
 *
 * - `JsonDataset`: the reference JSON list
 *   `[{"image": [paths...], "conversations": [{"from", "value"}], "task_type"?}]`,
 *   paths relative to the JSON file's folder (or absolute); the k-th `<image>`
 *   in the conversation takes `image[k]`.
 * - `FolderPairDataset`: clean images in a folder, (LQ, HQ) pairs made on the fly
 *   with a per-item seed derived from (seed, index, epoch).
 * - `writeDegradedDataset`: the same pairs written once as `lq/*.png`, `hq/*.png`
 *   and `data.json` (reference format), readable back with `JsonDataset`.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { fieldPath, listImages, oneOf, readImage, validateConfig, writeFileAtomic, writeImage, type RgbImage } from "@lm4lv/core";
import { DEFAULT_GPT_VALUE, DEFAULT_HUMAN_VALUE, IMAGE_PLACEHOLDER, type ConversationTurn } from "@lm4lv/tokenizer";
import { deriveSeed } from "./rng.js";
import { getTask, makePair, type TaskParams } from "./tasks.js";

/**
 * The conversation of one (LQ → HQ) training pair (spec §4): the human turn
 * holds the LQ image and the task tokens, the assistant (gpt) turn the HQ image.
 */
export const PAIR_CONVERSATION: readonly ConversationTurn[] = Object.freeze([
  Object.freeze({ from: "human", value: DEFAULT_HUMAN_VALUE }),
  Object.freeze({ from: "gpt", value: DEFAULT_GPT_VALUE }),
]) as readonly ConversationTurn[];

/** `task_type` written for pair data: the "###" Human/Assistant template of spec §4. */
export const PAIR_TASK_TYPE = "conversation";

export interface PairSample {
  /** Input image (human turn). */
  lq: RgbImage;
  /** Target image (assistant turn). */
  hq: RgbImage;
  conversation: ConversationTurn[];
}

export class DatasetError extends Error {}

function countPlaceholders(text: string): number {
  return text.split(IMAGE_PLACEHOLDER).length - 1;
}

function copyConversation(): ConversationTurn[] {
  return PAIR_CONVERSATION.map((t) => ({ ...t }));
}

const path = () => z.string("expected a path (a string)").min(1, "expected a non-empty path");

/**
 * The fields of one item of the reference JSON list (spec §4). `image` may be a single path
 * (LLaVA style) or a list; either way it reads as a list. Other fields of an item are dropped.
 */
export const DATA_ITEM_FIELDS = z.object({
  image: z.preprocess((v) => (typeof v === "string" ? [v] : v), z.array(path(), "expected a path or a list of paths")),
  conversations: z
    .array(z.object({ from: oneOf(["human", "gpt", "none"]), value: z.string() }), "expected a list of turns")
    .min(1, "expected a non-empty list of turns"),
  task_type: oneOf(["conversation", "simple"]).optional(),
});

/** An item of the reference JSON list: DATA_ITEM_FIELDS, and the k-th `<image>` of the conversation for each path. */
export const DATA_ITEM_SCHEMA = DATA_ITEM_FIELDS.superRefine((it, ctx) => {
  const tokens = it.conversations.reduce((n, t) => n + countPlaceholders(t.value), 0);
  if (tokens !== it.image.length) {
    ctx.addIssue({ code: "custom", path: ["image"], input: it.image, message: `${it.image.length} path(s) but the conversation has ${tokens} ${IMAGE_PLACEHOLDER} placeholder(s)` });
  }
});

export type DataItem = z.output<typeof DATA_ITEM_SCHEMA>;

/** Names an issue's path in a JSON list: "item 3: conversations[0].from". */
export function itemPath(path: readonly PropertyKey[]): string {
  if (typeof path[0] !== "number") return fieldPath(path);
  return path.length > 1 ? `item ${path[0]}: ${fieldPath(path.slice(1))}` : `item ${path[0]}`;
}

/**
 * Reads a JSON list in the reference format (a folder means its `data.json`) and validates every
 * item with `item` (default DATA_ITEM_SCHEMA); errors name the file, the item and the field,
 * e.g. `data.json: item 3: conversations[0].from: expected one of human, gpt, none, got "bot"`.
 */
export function readDataItems<S extends z.ZodType = typeof DATA_ITEM_SCHEMA>(jsonPath: string, item?: S): { path: string; items: z.output<S>[] } {
  let abs = resolve(jsonPath);
  if (existsSync(abs) && statSync(abs).isDirectory()) abs = join(abs, "data.json");
  if (!existsSync(abs)) throw new DatasetError(`${abs}: dataset JSON not found`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, "utf8"));
  } catch (e) {
    throw new DatasetError(`${abs}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new DatasetError(`${abs}: expected a JSON list of items ({"image": [...], "conversations": [...]})`);
  const items = validateConfig(raw, z.array(item ?? DATA_ITEM_SCHEMA), abs, { error: DatasetError, field: itemPath });
  return { path: abs, items: items as z.output<S>[] };
}

export interface JsonDatasetOptions {
  /** Square side (or {width, height}) every image is resized to (bicubic); omit to keep sizes. */
  size?: number | { width: number; height: number };
  /** Require exactly two images per item (LQ, HQ), as `get` needs. Default true. */
  pairs?: boolean;
}

/** A dataset in the reference JSON format. Every path is checked when the file is opened. */
export class JsonDataset {
  /** Absolute image paths per item. */
  private readonly paths: string[][];

  private constructor(
    readonly jsonPath: string,
    readonly items: readonly DataItem[],
    private readonly opts: JsonDatasetOptions,
  ) {
    const root = dirname(jsonPath);
    this.paths = items.map((it) => it.image.map((p) => (isAbsolute(p) ? p : resolve(root, p))));
  }

  /**
   * Reads and validates `jsonPath` (structure, `<image>` counts, that every image file exists).
   * A folder means its `data.json`.
   */
  static open(jsonPath: string, opts: JsonDatasetOptions = {}): JsonDataset {
    const { path: abs, items } = readDataItems(jsonPath);
    const pairs = opts.pairs ?? true;
    const root = dirname(abs);
    items.forEach((it, i) => {
      if (pairs && it.image.length !== 2) {
        throw new DatasetError(`${abs}: item ${i}: image: expected 2 images (LQ, HQ), got ${it.image.length} (open with { pairs: false } for other layouts)`);
      }
      it.image.forEach((p, k) => {
        const full = isAbsolute(p) ? p : resolve(root, p);
        if (!existsSync(full)) throw new DatasetError(`${abs}: item ${i}: image[${k}]: "${p}" not found (looked for ${full})`);
      });
    });
    return new JsonDataset(abs, items, opts);
  }

  get length(): number {
    return this.items.length;
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.items.length) {
      throw new RangeError(`${this.jsonPath}: index ${i} out of range [0, ${this.items.length})`);
    }
  }

  /** All images of item i, in `<image>` order, resized as configured. */
  async getImages(i: number): Promise<RgbImage[]> {
    this.checkIndex(i);
    return Promise.all(this.paths[i].map((p) => readImage(p, { size: this.opts.size })));
  }

  /** Item i as a pair: image[0] is LQ, image[1] is HQ. `epoch` is accepted for symmetry and unused (the files are fixed). */
  async get(i: number, _epoch = 0): Promise<PairSample> {
    this.checkIndex(i);
    if (this.paths[i].length !== 2) throw new DatasetError(`${this.jsonPath} item ${i}: get() needs 2 images, the item has ${this.paths[i].length}`);
    const [lq, hq] = await this.getImages(i);
    return { lq, hq, conversation: this.items[i].conversations.map((t) => ({ ...t })) };
  }
}

export interface FolderPairOptions {
  /** Square side (or {width, height}) the clean images are resized to (bicubic). Omit to keep sizes. */
  size?: number | { width: number; height: number };
  /** Base seed; the item seed is deriveSeed(seed, index, epoch). Default 0. */
  seed?: number;
  /** Overrides of the task's default params. */
  params?: TaskParams;
}

/**
 * Pairs made on the fly from clean images. Pair convention:
 * restoration tasks → LQ = degrade(clean), HQ = clean;
 * spatial tasks     → LQ = clean, HQ = op(clean).
 * Item i of epoch e is reproducible: its seed is deriveSeed(seed, i, e).
 */
export class FolderPairDataset {
  readonly names: readonly string[];
  readonly task: string;
  private readonly seed: number;

  constructor(
    readonly dir: string,
    task: string,
    private readonly opts: FolderPairOptions = {},
  ) {
    getTask(task); // unknown task → error listing the known ones
    this.task = task;
    this.seed = opts.seed ?? 0;
    deriveSeed(this.seed); // validates the seed now rather than at the first get()
    this.names = listImages(dir);
  }

  get length(): number {
    return this.names.length;
  }

  /** The seed used for item i in epoch `epoch`. */
  itemSeed(i: number, epoch = 0): number {
    return deriveSeed(this.seed, i, epoch);
  }

  async get(i: number, epoch = 0): Promise<PairSample & { name: string }> {
    if (!Number.isInteger(i) || i < 0 || i >= this.names.length) {
      throw new RangeError(`${this.dir}: index ${i} out of range [0, ${this.names.length})`);
    }
    const name = this.names[i];
    const clean = await readImage(join(this.dir, name), { size: this.opts.size });
    const { lq, hq } = await makePair(this.task, clean, this.itemSeed(i, epoch), this.opts.params);
    return { lq, hq, conversation: copyConversation(), name };
  }
}

export interface WriteDatasetOptions extends FolderPairOptions {
  /** Called after each pair is written. */
  onProgress?: (done: number, total: number, name: string) => void;
}

/**
 * Writes the epoch-0 pairs of `FolderPairDataset(cleanDir, task, opts)` as
 * `outDir/lq/<stem>.png`, `outDir/hq/<stem>.png` and `outDir/data.json`
 * (reference format, paths relative to outDir). PNG rounds values to uint8.
 */
export async function writeDegradedDataset(
  cleanDir: string,
  outDir: string,
  task: string,
  opts: WriteDatasetOptions = {},
): Promise<{ count: number; jsonPath: string }> {
  const ds = new FolderPairDataset(cleanDir, task, opts);
  // Output names are stems + ".png": two inputs with the same stem would overwrite each other.
  const seen = new Map<string, string>();
  for (const n of ds.names) {
    const stem = basename(n, extname(n));
    const other = seen.get(stem);
    if (other !== undefined) throw new DatasetError(`${cleanDir}: "${other}" and "${n}" would both be written as ${stem}.png`);
    seen.set(stem, n);
  }
  mkdirSync(join(outDir, "lq"), { recursive: true });
  mkdirSync(join(outDir, "hq"), { recursive: true });
  const items: DataItem[] = [];
  for (let i = 0; i < ds.length; i++) {
    const { lq, hq, conversation, name } = await ds.get(i, 0);
    const file = `${basename(name, extname(name))}.png`;
    await writeImage(join(outDir, "lq", file), lq);
    await writeImage(join(outDir, "hq", file), hq);
    items.push({ image: [`lq/${file}`, `hq/${file}`], conversations: conversation, task_type: PAIR_TASK_TYPE });
    opts.onProgress?.(i + 1, ds.length, name);
  }
  const jsonPath = join(outDir, "data.json");
  writeFileAtomic(jsonPath, JSON.stringify(items, null, 2) + "\n");
  return { count: items.length, jsonPath };
}
