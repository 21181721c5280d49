/**
 * Writes the bundled examples of `pnpm infer` (no arguments): for each task, one held-out test photo
 * (assets/test-images) as `clean.png` and its degraded version as `degraded.png`, made with the task's
 * parameters from the shipped checkpoint and a fixed seed.
 *   node tools/bench/dist/examples.js [--image coffee.png] [--tasks denoise,saltpepper,...]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { readImage, writeImage } from "@lm4lv/core";
import { degrade, getTask, TASK_NAMES } from "@lm4lv/data";
import { commaList, isMain, parseCommandLine, runScript, usageText } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The options of examples: the one place each default lives. */
export const EXAMPLES_OPTIONS = z.object({
  image: z.string().default("coffee.png").describe("the test photo (a file of assets/test-images)"),
  tasks: commaList()
    .pipe(z.array(z.enum(TASK_NAMES, `expected task names (${TASK_NAMES.join(", ")})`)))
    .default(["denoise", "saltpepper", "identity"])
    .describe("tasks, comma-separated"),
});

export type ExamplesOptions = z.output<typeof EXAMPLES_OPTIONS>;

const USAGE = usageText("usage: node tools/bench/dist/examples.js [options]", EXAMPLES_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseExamplesArgs(argv: string[]): ExamplesOptions | undefined {
  const { options, help } = parseCommandLine(argv, EXAMPLES_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseExamplesArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const { image: name, tasks } = options;
  const clean = await readImage(join(ROOT, "assets/test-images", name));
  const notes: string[] = [];
  for (const task of tasks) {
    const ckpt = join(ROOT, "models/lm4lv-tiny", task, "lm4lv.json");
    const params = existsSync(ckpt) ? (JSON.parse(readFileSync(ckpt, "utf8")).extra?.params ?? {}) : {};
    const dir = join(ROOT, "assets/examples", task);
    mkdirSync(dir, { recursive: true });
    const spatial = getTask(task).kind === "spatial";
    // restoration: input = degraded photo, target = photo; spatial: input = photo, target = transformed photo
    const out = await degrade(task, clean, 1000, params);
    await writeImage(join(dir, "degraded.png"), spatial ? clean : out);
    await writeImage(join(dir, "clean.png"), spatial ? out : clean);
    notes.push(`| ${task} | ${JSON.stringify(params)} | ${spatial ? "input = photo, target = transformed photo" : "input = degraded photo, target = photo"} |`);
  }
  writeFileSync(
    join(ROOT, "assets/examples/README.md"),
    `# Bundled examples of \`pnpm infer\`

\`<task>/degraded.png\` is the input and \`<task>/clean.png\` the target, made from the held-out test
photo \`assets/test-images/${name}\` (see that folder's README for its source and licence) by
\`node tools/bench/dist/examples.js\` with seed 1000 and the task parameters of the shipped checkpoint.

| task | parameters | pair |
| --- | --- | --- |
${notes.join("\n")}
`,
  );
  console.log(`examples for ${tasks.join(", ")} → assets/examples/`);
}

if (isMain("examples")) runScript(main, USAGE);
