/**
 * Data sources for the trainer. Either a function `(step, rng, micro) → batch`
 * (state lives in the trainer's RNG), or a `DataIterator` whose position can be
 * saved in a checkpoint and restored, so a resumed run sees the same batches.
 */
import { TrainRng } from "@lm4lv/data";

/** JSON-serialisable iterator state. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** A batch function: `step` is 1-based, `micro` the micro-batch index within the step (0..k-1). */
export type BatchFn<B> = (step: number, rng: TrainRng, micro: number) => B | Promise<B>;

export interface DataIterator<B> {
  /** The next batch; may draw from the trainer's rng. */
  next(rng: TrainRng): B | Promise<B>;
  /** Position, as JSON (saved in checkpoints). */
  getState(): JsonValue;
  /** Restores a position from getState(). */
  setState(state: JsonValue): void;
}

export type DataSource<B> = BatchFn<B> | DataIterator<B>;

export function isDataIterator<B>(src: DataSource<B>): src is DataIterator<B> {
  return typeof src === "object" && src !== null && typeof (src as DataIterator<B>).next === "function";
}

export interface ShuffledBatchesOptions<B> {
  /** Number of items in the dataset. */
  size: number;
  batchSize: number;
  /** Seed of the per-epoch shuffles: epoch e uses a permutation drawn from (seed, e). */
  seed: number;
  /** Builds a batch from item indices. */
  load: (indices: number[], rng: TrainRng) => B | Promise<B>;
  /** Drop the last incomplete batch of an epoch (default true, so every batch has batchSize items). */
  dropLast?: boolean;
  /** false: items in index order every epoch. Default true. */
  shuffle?: boolean;
}

export interface ShuffledBatchesState {
  epoch: number;
  position: number;
}

/**
 * Iterates a dataset of `size` items in batches, epoch after epoch, each epoch in
 * its own seeded shuffled order. State = (epoch, position in that epoch's order);
 * the order itself is recomputed from (seed, epoch), so the state stays tiny.
 */
export class ShuffledBatches<B> implements DataIterator<B> {
  epoch = 0;
  position = 0;
  private order: number[] | null = null;
  private orderEpoch = -1;

  constructor(private readonly opts: ShuffledBatchesOptions<B>) {
    const { size, batchSize } = opts;
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`ShuffledBatches: size must be a positive integer, got ${size}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`ShuffledBatches: batchSize must be a positive integer, got ${batchSize}`);
    if ((opts.dropLast ?? true) && batchSize > size) throw new RangeError(`ShuffledBatches: batchSize ${batchSize} exceeds dataset size ${size} with dropLast`);
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    const { size, batchSize } = this.opts;
    return (this.opts.dropLast ?? true) ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
  }

  /** The item order of an epoch. */
  epochOrder(epoch: number): number[] {
    if (this.orderEpoch !== epoch || !this.order) {
      const order = Array.from({ length: this.opts.size }, (_, i) => i);
      if (this.opts.shuffle ?? true) new TrainRng(this.opts.seed * 1_000_003 + epoch).shuffle(order);
      this.order = order;
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  next(rng: TrainRng): B | Promise<B> {
    const { size, batchSize } = this.opts;
    const dropLast = this.opts.dropLast ?? true;
    if (this.position >= size || (dropLast && this.position + batchSize > size)) {
      this.epoch += 1;
      this.position = 0;
    }
    const order = this.epochOrder(this.epoch);
    const indices = order.slice(this.position, Math.min(size, this.position + batchSize));
    this.position += indices.length;
    return this.opts.load(indices, rng);
  }

  getState(): JsonValue {
    return { epoch: this.epoch, position: this.position };
  }

  setState(state: JsonValue): void {
    const s = state as unknown as ShuffledBatchesState;
    if (!s || typeof s !== "object" || !Number.isInteger(s.epoch) || !Number.isInteger(s.position) || s.position < 0 || s.position > this.opts.size) {
      throw new Error(`ShuffledBatches.setState: bad state ${JSON.stringify(state)}`);
    }
    this.epoch = s.epoch;
    this.position = s.position;
  }
}
