/**
 * Test fixtures of @lm4lv/llm for other packages' tests (the `@lm4lv/llm/testing` subpath):
 * the tiny Llama checkpoint with Hugging Face reference outputs (see fixtures/llama_tiny/README.md).
 * Available in the workspace, not in the published package.
 */
import { fileURLToPath } from "node:url";

/** Folder with config.json, model.safetensors and cases.safetensors of `llama_tiny`. */
export const LLAMA_TINY_DIR = fileURLToPath(new URL("../fixtures/llama_tiny", import.meta.url));
