/**
 * Test helpers of @lm4lv/tokenizer (the `@lm4lv/tokenizer/testing` subpath, for the workspace's
 * tests; not part of the public API): a tiny byte-level BPE `tokenizer.json` built in code, and the
 * Llama-2 tokenizer fixture with reference encodings (see fixtures/README.md).
 */
import { fileURLToPath } from "node:url";

export { byteToUnicode, makeByteLevelTokenizerJson, BYTE_LEVEL_MERGES, BYTE_LEVEL_BOS, BYTE_LEVEL_EOS } from "./byte-level.js";

/** Folder with the Llama-2 `tokenizer.json` and its reference cases (`tokenizer_llama2`). */
export const LLAMA2_TOKENIZER_DIR = fileURLToPath(new URL("../../fixtures/tokenizer_llama2", import.meta.url));
