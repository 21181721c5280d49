/**
 * Test helpers of @lm4lv/mae (the `@lm4lv/mae/testing` subpath, for the workspace's tests; not part
 * of the public API): the tiny ViTMAE checkpoint with Hugging Face reference outputs
 * (see fixtures/vit_mae_tiny/README.md). Available in the workspace, not in the published package.
 */
import { fileURLToPath } from "node:url";
import type * as tf from "@tensorflow/tfjs";

/** Folder with config.json, model.safetensors and cases.safetensors of `vit_mae_tiny`. */
export const VIT_MAE_TINY_DIR = fileURLToPath(new URL("../fixtures/vit_mae_tiny", import.meta.url));

/** A tensor's values, synchronously (float32 or int32). */
export function data(t: tf.Tensor): Float32Array | Int32Array {
  return t.dataSync() as Float32Array | Int32Array;
}
