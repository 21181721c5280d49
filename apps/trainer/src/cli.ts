#!/usr/bin/env node
/**
 * pnpm train <command> [--config file.yaml] [--flags]
 *   mae     MAE pre-training (masked) or decoder fine-tuning (spec §6)
 *   lm      text pre-training of a small Llama-architecture LM (the embedded default)
 *   lm4lv   adapters + task tokens with the LLM, MAE encoder and decoder frozen
 * With no command: `lm4lv` on the bundled default (a denoising adapter set).
 */
import { maeCommand } from "./commands/mae.js";
import { lmCommand } from "./commands/lm.js";
import { lm4lvCommand } from "./commands/lm4lv.js";

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  mae: maeCommand,
  lm: lmCommand,
  lm4lv: lm4lvCommand,
};

const USAGE = `usage: pnpm train [mae|lm|lm4lv] [--config file.yaml] [options]
  pnpm train                 train a denoising adapter set on the bundled images (a few minutes)
  pnpm train mae --help      MAE pre-training / decoder fine-tuning
  pnpm train lm --help       text pre-training of the small language model
  pnpm train lm4lv --help    LM4LV adapters with everything else frozen`;

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    console.log(USAGE);
    return 0;
  }
  if (first === undefined || first.startsWith("-")) return lm4lvCommand(argv);
  const cmd = COMMANDS[first];
  if (!cmd) {
    console.error(`unknown command "${first}"\n${USAGE}`);
    return 1;
  }
  return cmd(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.LM4LV_DEBUG) console.error(err);
    process.exit(1);
  },
);
