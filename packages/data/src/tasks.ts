/**
 * The LM4LV task registry (spec §8): task name → operation + default params.
 *
 * Pair convention (used by the datasets):
 * - "restoration" tasks: LQ = op(clean), HQ = clean (the model removes the degradation);
 * - "spatial" tasks:     LQ = clean,     HQ = op(clean) (the model applies the operation).
 */
import type { RgbImage } from "@lm4lv/core";
import {
  flipHorizontal,
  flipVertical,
  gaussianBlur,
  gaussianNoise,
  identity,
  jpegCompress,
  patchMask,
  rainStreaks,
  rotate90,
  saltPepper,
  GAUSSIAN_BLUR_DEFAULTS,
  GAUSSIAN_NOISE_DEFAULTS,
  JPEG_DEFAULTS,
  MASK_DEFAULTS,
  RAIN_DEFAULTS,
  SALT_PEPPER_DEFAULTS,
} from "./degradations.js";
import { Rng } from "./rng.js";

export type TaskKind = "restoration" | "spatial";

export type TaskParams = Readonly<Record<string, number | boolean>>;

export interface TaskSpec {
  kind: TaskKind;
  description: string;
  /** Default parameters; `degrade(..., overrides)` may replace any of them. */
  params: TaskParams;
  /** Applies the operation with the given (complete) params; never mutates `img`. */
  apply(img: RgbImage, params: TaskParams, rng: Rng): RgbImage | Promise<RgbImage>;
}

// `as never` casts: each entry's params are exactly its function's params; the registry stores them untyped.
export const TASKS = {
  denoise: {
    kind: "restoration",
    description: "Gaussian noise, σ = 50 (0–255 scale)",
    params: { ...GAUSSIAN_NOISE_DEFAULTS, sigma: 50 },
    apply: (img, p, rng) => gaussianNoise(img, p as never, rng),
  },
  denoise15: {
    kind: "restoration",
    description: "Gaussian noise, σ = 15 (0–255 scale)",
    params: { ...GAUSSIAN_NOISE_DEFAULTS, sigma: 15 },
    apply: (img, p, rng) => gaussianNoise(img, p as never, rng),
  },
  denoise25: {
    kind: "restoration",
    description: "Gaussian noise, σ = 25 (0–255 scale)",
    params: { ...GAUSSIAN_NOISE_DEFAULTS, sigma: 25 },
    apply: (img, p, rng) => gaussianNoise(img, p as never, rng),
  },
  deblur: {
    kind: "restoration",
    description: "Gaussian blur, kernel 21, σ = 3, reflect padding",
    params: { ...GAUSSIAN_BLUR_DEFAULTS },
    apply: (img, p) => gaussianBlur(img, p as never),
  },
  derain: {
    kind: "restoration",
    description: "synthetic rain streaks (motion-blurred sparse noise)",
    params: { ...RAIN_DEFAULTS },
    apply: (img, p, rng) => rainStreaks(img, p as never, rng),
  },
  saltpepper: {
    kind: "restoration",
    description: "salt-and-pepper noise, 10 % of pixels",
    params: { ...SALT_PEPPER_DEFAULTS },
    apply: (img, p, rng) => saltPepper(img, p as never, rng),
  },
  mask: {
    kind: "restoration",
    description: "random 16×16 patches set to 0, 25 % of the grid",
    params: { ...MASK_DEFAULTS },
    apply: (img, p, rng) => patchMask(img, p as never, rng),
  },
  jpeg: {
    kind: "restoration",
    description: "JPEG compression, quality 10",
    params: { ...JPEG_DEFAULTS },
    apply: (img, p) => jpegCompress(img, p as never),
  },
  rot90: {
    kind: "spatial",
    description: "rotate 90° counter-clockwise",
    params: {},
    apply: (img) => rotate90(img, 1),
  },
  rot180: {
    kind: "spatial",
    description: "rotate 180°",
    params: {},
    apply: (img) => rotate90(img, 2),
  },
  rot270: {
    kind: "spatial",
    description: "rotate 270° counter-clockwise (90° clockwise)",
    params: {},
    apply: (img) => rotate90(img, 3),
  },
  hflip: {
    kind: "spatial",
    description: "horizontal flip (mirror left ↔ right)",
    params: {},
    apply: (img) => flipHorizontal(img),
  },
  vflip: {
    kind: "spatial",
    description: "vertical flip (mirror top ↔ bottom)",
    params: {},
    apply: (img) => flipVertical(img),
  },
  identity: {
    kind: "spatial",
    description: "repeat the image unchanged (sanity task)",
    params: {},
    apply: (img) => identity(img),
  },
} satisfies Record<string, TaskSpec>;

export type TaskName = keyof typeof TASKS;

export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

export function isTaskName(name: string): name is TaskName {
  return Object.prototype.hasOwnProperty.call(TASKS, name);
}

/** The task's spec, or an error listing the known task names. */
export function getTask(name: string): TaskSpec {
  if (!isTaskName(name)) throw new RangeError(`unknown task "${name}" (known: ${TASK_NAMES.join(", ")})`);
  return TASKS[name];
}

/**
 * Applies a task's operation with its default params (optionally overridden)
 * and a generator seeded with `seed`. Same (task, img, seed, overrides) → same output.
 */
export async function degrade(task: string, img: RgbImage, seed: number, overrides: TaskParams = {}): Promise<RgbImage> {
  const spec = getTask(task);
  for (const key of Object.keys(overrides)) {
    if (!(key in spec.params)) {
      const known = Object.keys(spec.params);
      throw new RangeError(`task "${task}": unknown parameter "${key}" (${known.length ? `known: ${known.join(", ")}` : "it takes none"})`);
    }
  }
  return spec.apply(img, { ...spec.params, ...overrides }, new Rng(seed));
}

/**
 * Builds the (LQ, HQ) pair for a task from a clean image, following the pair convention
 * above: restoration → (op(clean), clean); spatial → (clean, op(clean)).
 */
export async function makePair(
  task: string,
  clean: RgbImage,
  seed: number,
  overrides: TaskParams = {},
): Promise<{ lq: RgbImage; hq: RgbImage }> {
  const spec = getTask(task);
  const out = await degrade(task, clean, seed, overrides);
  return spec.kind === "restoration" ? { lq: out, hq: clean } : { lq: clean, hq: out };
}

/**
 * Parses `key=value` overrides of a task's parameters (e.g. from a command line), checking each key
 * against the task's defaults and each value against the default's type.
 */
export function parseTaskParams(task: string, pairs: readonly string[]): TaskParams {
  const defaults = getTask(task).params;
  const out: Record<string, number | boolean> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`expected key=value, got "${pair}"`);
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1).trim();
    if (!(key in defaults)) {
      const known = Object.keys(defaults);
      throw new Error(`${key}: task "${task}" has no such parameter (${known.length ? `known: ${known.join(", ")}` : "it takes none"})`);
    }
    if (typeof defaults[key] === "boolean") {
      if (raw !== "true" && raw !== "false") throw new Error(`${key}: expected true or false, got "${raw}"`);
      out[key] = raw === "true";
    } else {
      const n = Number(raw);
      if (raw === "" || !Number.isFinite(n)) throw new Error(`${key}: expected a number, got "${raw}"`);
      out[key] = n;
    }
  }
  return out;
}
