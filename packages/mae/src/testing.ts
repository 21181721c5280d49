/**
 * Test fixtures of @lm4lv/mae for other packages' tests (the `@lm4lv/mae/testing` subpath):
 * the tiny ViTMAE checkpoint with Hugging Face reference outputs (see fixtures/vit_mae_tiny/README.md).
 * Available in the workspace, not in the published package.
 */
import { fileURLToPath } from "node:url";

/** Folder with config.json, model.safetensors and cases.safetensors of `vit_mae_tiny`. */
export const VIT_MAE_TINY_DIR = fileURLToPath(new URL("../fixtures/vit_mae_tiny", import.meta.url));
