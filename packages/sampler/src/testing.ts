/**
 * Test helpers of @lm4lv/sampler (the `@lm4lv/sampler/testing` subpath, for the workspace's tests;
 * not part of the public API): random linear adapters implementing `VisualAdapters`.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32 as SamplerRng } from "@lm4lv/core";
import type { VisualAdapters } from "./visual.js";

/**
 * A real pair of random linear maps (x·Wᵀ + b, PyTorch-style init) implementing the sampler's
 * adapter interface — the same maths as `@lm4lv/adapters`, without depending on it.
 */
export class RandomLinearAdapters implements VisualAdapters {
  readonly up: { w: tf.Tensor2D; b: tf.Tensor1D };
  readonly down: { w: tf.Tensor2D; b: tf.Tensor1D };

  constructor(visionHidden: number, llmHidden: number, seed: number, scale = 1) {
    const rng = new SamplerRng(seed);
    const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rng.next() - 1) * bound * scale);
    const bv = 1 / Math.sqrt(visionHidden);
    const bl = 1 / Math.sqrt(llmHidden);
    this.up = { w: tf.tensor2d(uniform(llmHidden * visionHidden, bv), [llmHidden, visionHidden]), b: tf.tensor1d(uniform(llmHidden, bv)) };
    this.down = { w: tf.tensor2d(uniform(visionHidden * llmHidden, bl), [visionHidden, llmHidden]), b: tf.tensor1d(uniform(visionHidden, bl)) };
  }

  private static apply(x: tf.Tensor3D, { w, b }: { w: tf.Tensor2D; b: tf.Tensor1D }): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, N, D] = x.shape;
      return tf.matMul(x.reshape([B * N, D]), w, false, true).add(b).reshape([B, N, w.shape[0]]) as tf.Tensor3D;
    });
  }

  adapt(features: tf.Tensor3D): tf.Tensor3D {
    return RandomLinearAdapters.apply(features, this.up);
  }

  deAdapt(hidden: tf.Tensor3D): tf.Tensor3D {
    return RandomLinearAdapters.apply(hidden, this.down);
  }

  dispose(): void {
    tf.dispose([this.up.w, this.up.b, this.down.w, this.down.b]);
  }
}
