/**
 * The ablation's language model: the same architecture and tokenizer as a trained LM folder, with
 * fresh random weights (HF init), saved as an HF folder.
 *   node tools/bench/dist/random-lm.js <trained-lm-dir> <out-dir> [seed]
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { validateConfig } from "@lm4lv/core";
import { LlamaForCausalLM, readLlamaConfig } from "@lm4lv/llm";
import { isMain, numeric, parseCommandLine, runScript, UsageError } from "./options.js";

/** The arguments of random-lm (positional): the one place the seed's default lives. */
export const RANDOM_LM_ARGS = z.object({
  src: z.string().min(1),
  out: z.string().min(1),
  seed: z.preprocess(numeric, z.number("expected an integer").int("expected an integer")).default(1234),
});

export type RandomLmArgs = z.output<typeof RANDOM_LM_ARGS>;

const USAGE = `usage: random-lm <trained-lm-dir> <out-dir> [seed]   (seed default ${RANDOM_LM_ARGS.shape.seed.def.defaultValue})`;

/** argv → the two folders and the seed (undefined for --help); problems name the argument. */
export function parseRandomLmArgs(argv: string[]): RandomLmArgs | undefined {
  const { positionals, help } = parseCommandLine(argv, z.object({}), { positionals: "<trained-lm-dir> <out-dir> [seed]" });
  if (help) return undefined;
  const [src, out, seed] = positionals;
  return validateConfig({ src, out, seed }, RANDOM_LM_ARGS, (path) => `<${String(path[0])}>`, { error: UsageError });
}

function main(): void {
  const args = parseRandomLmArgs(process.argv.slice(2));
  if (!args) return console.log(USAGE);
  const { src, out, seed } = args;
  const config = readLlamaConfig(src);
  const lm = LlamaForCausalLM.fromConfig(config as unknown as Record<string, unknown>, seed);
  mkdirSync(out, { recursive: true });
  lm.save(out, { dtype: "F16" });
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
  }
  console.log(`random ${config.num_hidden_layers}-layer LM of width ${config.hidden_size} → ${out}`);
}

if (isMain("random-lm")) runScript(main, USAGE);
