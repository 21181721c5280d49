/**
 * pnpm bench [suite...] [options]   suites: core, mae, llm, lm4lv, onnx, train (default: all of these),
 *                          scale (only when named: LM4LV at real shapes, see scale.ts),
 *                          quality (only when named: what each weight setting costs against fp32, see quality.ts),
 *                          generation (only when named: lm4lv's generation table alone; with
 *                          --against=<checkout> side by side with another checkout, see generation.ts)
 * Options belong to the suites named: scale's (SCALE_OPTIONS), quality's (QUALITY_OPTIONS), generation's and lm4lv's
 * (GENERATION_OPTIONS); a flag no named suite takes is an error. `--help` lists them.
 * Speed and memory are measured here, never in tests. Figures are side by side in one run.
 */
import { z } from "zod";
import { benchMatMul, benchSafetensors } from "./core.js";
import { benchLlm, llmLoadChild } from "./llm.js";
import { benchOnnx } from "./onnx.js";
import { benchMae } from "./mae.js";
import { benchLm4lv } from "./lm4lv.js";
import { benchGeneration, GENERATION_OPTIONS, parseGenerationArgs } from "./generation.js";
import { benchTrain, trainRssChild } from "./train.js";
import { benchScale, parseScaleArgs, SCALE_OPTIONS } from "./scale.js";
import { benchQuality, parseQualityArgs, QUALITY_OPTIONS } from "./quality.js";
import { isMain, parseCommandLine, usageText, UsageError } from "./options.js";

interface Suite {
  run: (argv: string[], allow: readonly z.ZodObject[]) => Promise<unknown>;
  /** The options the suite takes. */
  options?: z.ZodObject;
}

export const SUITES: Record<string, Suite> = {
  core: { run: async () => { await benchMatMul(); await benchSafetensors(); } },
  mae: { run: async () => { await benchMae(); } },
  llm: { run: async () => { await benchLlm(); } },
  lm4lv: { run: async (argv, allow) => { await benchLm4lv(); await benchGeneration(parseGenerationArgs(argv, allow)); }, options: GENERATION_OPTIONS },
  generation: { run: async (argv, allow) => { await benchGeneration(parseGenerationArgs(argv, allow)); }, options: GENERATION_OPTIONS },
  onnx: { run: async () => { await benchOnnx(); } },
  train: { run: async () => { await benchTrain(); } },
  scale: { run: async (argv, allow) => { await benchScale(parseScaleArgs(argv, allow)); }, options: SCALE_OPTIONS },
  quality: { run: async (argv, allow) => { await benchQuality(parseQualityArgs(argv, allow)); }, options: QUALITY_OPTIONS },
};
/** Suites run only when named (minutes and gigabytes). */
const OPT_IN = new Set(["scale", "generation", "quality"]);

const USAGE = [
  `usage: pnpm bench [suite...] [--name=value ...]   suites: ${Object.keys(SUITES).join(", ")} (default: all but ${[...OPT_IN].join(", ")})`,
  "",
  usageText("scale:", SCALE_OPTIONS, { help: false }),
  "",
  usageText("quality:", QUALITY_OPTIONS, { help: false }),
  "",
  usageText("generation, lm4lv:", GENERATION_OPTIONS, { help: false }),
  "",
  "  -h, --help                   show this help",
].join("\n");

/**
 * argv → the suites to run; every option is checked, now, against the suites that take it (an
 * unknown flag or a bad value is a UsageError naming the flag). Undefined for --help.
 */
export function parseBenchArgs(argv: string[]): string[] | undefined {
  const schemas = [...new Set(Object.values(SUITES).map((s) => s.options).filter((s) => s !== undefined))];
  const { positionals, help } = parseCommandLine(argv, z.object({}), { allow: schemas });
  if (help) return undefined;
  for (const n of positionals) if (!SUITES[n]) throw new UsageError(`unknown bench suite "${n}" (have: ${Object.keys(SUITES).join(", ")})`);
  const names = positionals.length ? positionals : Object.keys(SUITES).filter((n) => !OPT_IN.has(n));
  const taken = [...new Set(names.map((n) => SUITES[n].options).filter((s) => s !== undefined))];
  // the flags of the suites not named are unknown; each named suite validates its own now
  parseCommandLine(argv, z.object({}), { allow: taken });
  for (const s of taken) parseCommandLine(argv, s, { allow: taken });
  return names;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--train-rss-child") return trainRssChild(argv[1]);
  if (argv[0] === "--llm-load-child") return llmLoadChild(argv[1]);
  const names = parseBenchArgs(argv);
  if (!names) return console.log(USAGE);
  const taken = [...new Set(names.map((n) => SUITES[n].options).filter((s) => s !== undefined))];
  console.log(`# lm4lv benchmarks — ${new Date().toISOString()} — node ${process.version}, ${(await import("node:os")).cpus().length} cores`);
  for (const n of names) {
    console.log(`\n## ${n}`);
    await SUITES[n].run(argv, taken);
  }
}

if (isMain("run")) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.message : String(e));
      if (e instanceof UsageError) console.error(`\n${USAGE}`);
      process.exit(1);
    },
  );
}
