/**
 * The ablation's language model: the same architecture and tokenizer as a trained LM folder, with
 * fresh random weights (HF init), saved as an HF folder.
 *   node tools/bench/dist/random-lm.js <trained-lm-dir> <out-dir> [seed]
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { LlamaForCausalLM, readLlamaConfig } from "@lm4lv/llm";

const [src, out, seedArg] = process.argv.slice(2);
if (!src || !out) {
  console.error("usage: random-lm <trained-lm-dir> <out-dir> [seed]");
  process.exit(1);
}
const config = readLlamaConfig(src);
const lm = LlamaForCausalLM.fromConfig(config as unknown as Record<string, unknown>, Number(seedArg ?? 1234));
mkdirSync(out, { recursive: true });
lm.save(out, { dtype: "F16" });
for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
  if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
}
console.log(`random ${config.num_hidden_layers}-layer LM of width ${config.hidden_size} → ${out}`);
