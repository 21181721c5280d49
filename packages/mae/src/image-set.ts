/**
 * MAE training data: a folder of images held in memory as one square size (CHW float32 in [0,1]),
 * and shuffled batches over it whose flips and masking noise come from the trainer's seeded RNG
 * (saved in checkpoints, so a resumed run draws the same batches).
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { readImage } from "@lm4lv/core";
import { listImages } from "@lm4lv/data";
import { ShuffledBatches } from "@lm4lv/train";
import type { TrainRng } from "@lm4lv/train";

/** Files decoded at once by `ImageSet.load`. */
const LOAD_CONCURRENCY = 16;

/** A folder of images resized (bicubic) to one square size, kept as CHW float32 in [0,1]. */
export class ImageSet {
  private constructor(
    readonly files: string[],
    readonly size: number,
    /** `[count, 3, size, size]` flattened. */
    readonly data: Float32Array,
  ) {}

  static async load(dir: string, size: number, opts: { limit?: number } = {}): Promise<ImageSet> {
    let names = listImages(dir);
    if (opts.limit !== undefined && opts.limit > 0) names = names.slice(0, opts.limit);
    const plane = 3 * size * size;
    const hw = size * size;
    const data = new Float32Array(names.length * plane);
    const files = names.map((n) => join(dir, n));
    // Decoding runs on sharp's thread pool: keep several files in flight (one at a time left it idle
    // between awaits; a folder of 339k small tiles took ~17 min beside two trainings). Each file lands at its own index.
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < files.length; i = next++) {
        const img = await readImage(files[i], { size }); // HWC
        for (let p = 0; p < hw; p++) {
          data[i * plane + p] = img.data[3 * p];
          data[i * plane + hw + p] = img.data[3 * p + 1];
          data[i * plane + 2 * hw + p] = img.data[3 * p + 2];
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, files.length) }, worker));
    return new ImageSet(files, size, data);
  }

  get length(): number {
    return this.files.length;
  }

  /** CHW pixels of the items, each mirrored left-right where `flips[i]`. */
  gather(indices: number[], flips?: boolean[]): Float32Array {
    const s = this.size;
    const plane = 3 * s * s;
    const out = new Float32Array(indices.length * plane);
    indices.forEach((idx, i) => {
      if (!Number.isInteger(idx) || idx < 0 || idx >= this.length) throw new RangeError(`ImageSet.gather: index ${idx} out of range [0, ${this.length})`);
      const src = this.data.subarray(idx * plane, (idx + 1) * plane);
      if (!flips?.[i]) {
        out.set(src, i * plane);
        return;
      }
      for (let row = 0; row < 3 * s; row++) {
        const base = row * s;
        for (let x = 0; x < s; x++) out[i * plane + base + x] = src[base + s - 1 - x];
      }
    });
    return out;
  }

  /** `[n, 3, S, S]` in [0,1]. */
  tensor(indices: number[]): tf.Tensor4D {
    return tf.tensor4d(this.gather(indices), [indices.length, 3, this.size, this.size]);
  }
}

/** One (micro-)batch: pixels in [0,1] (CHW, flattened) and, for masking, `[count, N]` sorting noise. */
export interface MaeBatch {
  pixels01: Float32Array;
  count: number;
  size: number;
  noise: Float32Array | null;
}

export interface MaeBatchOptions {
  batchSize: number;
  /** Seed of the per-epoch orders. */
  seed: number;
  /** Random left-right flips (drawn from the trainer RNG). Default true. */
  flip?: boolean;
  /** Patches per image when masking noise is needed (pre-training); 0/undefined: no noise. */
  noisePatches?: number;
}

/** Shuffled batches over an ImageSet; flips and masking noise come from the trainer's RNG. */
export function maeBatches(set: ImageSet, opts: MaeBatchOptions): ShuffledBatches<MaeBatch> {
  return new ShuffledBatches<MaeBatch>({
    size: set.length,
    batchSize: opts.batchSize,
    seed: opts.seed,
    load: (indices: number[], rng: TrainRng) => {
      const flips = indices.map(() => (opts.flip ?? true) && rng.uniform() < 0.5);
      const n = opts.noisePatches ?? 0;
      const noise = n > 0 ? Float32Array.from({ length: indices.length * n }, () => rng.uniform()) : null;
      return { pixels01: set.gather(indices, flips), count: indices.length, size: set.size, noise };
    },
  });
}
