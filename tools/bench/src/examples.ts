/**
 * Writes the bundled examples of `pnpm infer` (no arguments): for each task, one held-out test photo
 * (assets/test-images) as `clean.png` and its degraded version as `degraded.png`, made with the task's
 * parameters from the shipped checkpoint and a fixed seed.
 *   node tools/bench/dist/examples.js [--image coffee.png] [--tasks denoise,saltpepper,...]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readImage, writeImage } from "@lm4lv/core";
import { degrade, getTask } from "@lm4lv/data";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const { values } = parseArgs({ options: { image: { type: "string" }, tasks: { type: "string" } } });
const name = values.image ?? "coffee.png";
const tasks = (values.tasks ?? "denoise,saltpepper,identity").split(",");
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
