/**
 * MAE features of training images, computed once: the MAE is frozen in LM4LV training, so the
 * features of an image never change. Entries are keyed by the MAE weights' hash and the image's
 * pixels (content-addressed: a pair drawn again, in any epoch, is not re-encoded), kept in
 * memory up to a byte budget (least recently used first out). An external gradient engine keeps
 * one (`LM4LVGradients.cache`; `ortLM4LVGradients` of @lm4lv/onnx encodes with ORT's MAE encoder).
 */
import { createHash } from "node:crypto";
import type { RgbImage } from "@lm4lv/core";

/** Encodes images (all of the model's size) → their features, one flat `[1+N, D]` array each. */
export type FeatureEncoder = (images: RgbImage[]) => Promise<Float32Array[]>;

export interface FeatureCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export class FeatureCache {
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    /** Hash of the MAE weights (e.g. `sourceHash({ mae: dir })` of @lm4lv/onnx). */
    readonly modelHash: string,
    private readonly encode: FeatureEncoder,
    /** Memory budget in bytes (default 4 GiB). */
    readonly maxBytes = 4 * 2 ** 30,
  ) {}

  private key(img: RgbImage): string {
    const h = createHash("sha1");
    h.update(`${this.modelHash}|${img.width}x${img.height}|`);
    h.update(new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength));
    return h.digest("hex");
  }

  /** Features of each image, encoding only those not seen before (in one call). */
  async features(images: RgbImage[]): Promise<Float32Array[]> {
    const keys = images.map((im) => this.key(im));
    const missing: number[] = [];
    const out: (Float32Array | undefined)[] = keys.map((k, i) => {
      const hit = this.entries.get(k);
      if (!hit) {
        if (!missing.some((j) => keys[j] === k)) missing.push(i);
        return undefined;
      }
      this.entries.delete(k); // most recently used last
      this.entries.set(k, hit);
      this.hits += 1;
      return hit;
    });
    const fresh = new Map<string, Float32Array>();
    if (missing.length) {
      const encoded = await this.encode(missing.map((i) => images[i]));
      if (encoded.length !== missing.length) throw new Error(`FeatureCache: the encoder returned ${encoded.length} feature sets for ${missing.length} images`);
      missing.forEach((i, j) => {
        fresh.set(keys[i], encoded[j]);
        this.put(keys[i], encoded[j]);
      });
      this.misses += missing.length;
    }
    return keys.map((k, i) => out[i] ?? fresh.get(k)!);
  }

  private put(key: string, value: Float32Array): void {
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes || this.entries.size <= 1) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }

  get stats(): FeatureCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.entries.size, bytes: this.bytes };
  }
}
