/**
 * pnpm bench [suite...]   suites: core, mae, llm, lm4lv, onnx, train (default: all of these),
 *                          scale (only when named: LM4LV at real shapes, see scale.ts),
 *                          generation (only when named: lm4lv's generation table alone; with
 *                          --against=<checkout> side by side with another checkout, see generation.ts)
 * Speed and memory are measured here, never in tests. Figures are side by side in one run.
 */
import { benchMatMul, benchSafetensors } from "./core.js";
import { benchLlm, llmLoadChild } from "./llm.js";
import { benchOnnx } from "./onnx.js";
import { benchMae } from "./mae.js";
import { benchLm4lv } from "./lm4lv.js";
import { benchGeneration } from "./generation.js";
import { benchTrain, trainRssChild } from "./train.js";
import { benchScale } from "./scale.js";

if (process.argv[2] === "--train-rss-child") {
  await trainRssChild(process.argv[3]);
  process.exit(0);
}
if (process.argv[2] === "--llm-load-child") {
  await llmLoadChild(process.argv[3]);
  process.exit(0);
}

const suites: Record<string, () => Promise<unknown>> = {
  core: async () => { await benchMatMul(); await benchSafetensors(); },
  mae: async () => { await benchMae(); },
  llm: async () => { await benchLlm(); },
  lm4lv: async () => { await benchLm4lv(); await benchGeneration(process.argv.slice(2)); },
  generation: async () => { await benchGeneration(process.argv.slice(2)); },
  onnx: async () => { await benchOnnx(); },
  train: async () => { await benchTrain(); },
  scale: async () => { await benchScale(process.argv.slice(2)); },
};
/** Suites run only when named (minutes and gigabytes). */
const OPT_IN = new Set(["scale", "generation"]);

const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const names = wanted.length ? wanted : Object.keys(suites).filter((n) => !OPT_IN.has(n));
for (const n of names) {
  if (!suites[n]) {
    console.error(`unknown bench suite "${n}" (have: ${Object.keys(suites).join(", ")})`);
    process.exit(1);
  }
}
console.log(`# lm4lv benchmarks — ${new Date().toISOString()} — node ${process.version}, ${(await import("node:os")).cpus().length} cores`);
for (const n of names) {
  console.log(`\n## ${n}`);
  await suites[n]();
}
