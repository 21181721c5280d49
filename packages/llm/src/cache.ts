/**
 * Key/value cache for incremental decoding.
 *
 * Per layer: K (after RoPE) and V, each (B, kv_heads, T, head_dim). The tensors are
 * kept (tf.keep) so they survive the caller's tf.tidy; `dispose()` frees them.
 * `LlamaForCausalLM.forward` updates a given cache in place (old tensors disposed)
 * and returns the same object.
 */
import * as tf from "@tensorflow/tfjs";
import type { KVCache } from "@lm4lv/core";

export interface LayerKV {
  key: tf.Tensor4D; // (B, kv_heads, T, hs), after RoPE
  value: tf.Tensor4D; // (B, kv_heads, T, hs)
}

export class LlamaKVCache implements KVCache {
  private layers: (LayerKV | undefined)[];
  private disposed = false;

  constructor(numLayers: number) {
    this.layers = new Array(numLayers).fill(undefined);
  }

  get numLayers(): number {
    return this.layers.length;
  }

  /** Positions stored (0 for a fresh cache). */
  get length(): number {
    return this.layers[0]?.key.shape[2] ?? 0;
  }

  /** Batch size of the stored tensors (undefined while empty). */
  get batchSize(): number | undefined {
    return this.layers[0]?.key.shape[0];
  }

  /** The stored K/V of one layer, or undefined while empty. Do not dispose them yourself. */
  layer(index: number): LayerKV | undefined {
    this.check();
    if (index < 0 || index >= this.layers.length) throw new RangeError(`cache layer ${index} out of range [0, ${this.layers.length})`);
    return this.layers[index];
  }

  /**
   * Replaces every layer's K/V at once (`next[i]` must hold the past positions plus the new
   * ones). The new tensors are kept; the previous ones are disposed.
   */
  replace(next: LayerKV[]): void {
    this.check();
    if (next.length !== this.layers.length) throw new Error(`cache update has ${next.length} layers, cache has ${this.layers.length}`);
    const previous = this.layers;
    this.layers = next.map(({ key, value }) => ({ key: tf.keep(key), value: tf.keep(value) }));
    for (const kv of previous) {
      kv?.key.dispose();
      kv?.value.dispose();
    }
  }

  dispose(): void {
    for (const kv of this.layers) {
      kv?.key.dispose();
      kv?.value.dispose();
    }
    this.layers = this.layers.map(() => undefined);
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private check(): void {
    if (this.disposed) throw new Error("this KV cache was disposed");
  }
}
