#!/usr/bin/env node
/**
 * export-onnx <checkpoint-or-model-dir> <out-dir> [--external-above BYTES]
 *   an LM4LV checkpoint (lm4lv.json): MAE encoder/decoder, Llama step + embedding, folded visual step
 *   a ViTMAE folder: encoder + decoder;  a Llama folder: step + embedding graphs
 * Re-running with unchanged weights reuses the export (manifest hash).
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { initBackend } from "@lm4lv/core";
import { ensureExported } from "./export.js";

const USAGE = "usage: pnpm export-onnx <checkpoint-or-model-dir> <out-dir> [--external-above BYTES]";

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { "external-above": { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) { console.log(USAGE); return 0; }
  if (positionals.length !== 2) { console.error(USAGE); return 1; }
  const [src, out] = positionals;
  if (!existsSync(src)) { console.error(`${src}: no such folder`); return 1; }
  const externalAbove = values["external-above"] === undefined ? undefined : Number(values["external-above"]);
  if (externalAbove !== undefined && !(externalAbove >= 0)) { console.error(`--external-above: expected a byte count, got "${values["external-above"]}"`); return 1; }
  await initBackend();
  const t0 = performance.now();
  const r = ensureExported(src, out, { externalAbove });
  const files = Object.entries(r.paths).map(([k, p]) => `  ${k}: ${p}`).join("\n");
  console.log(`${r.exported ? "exported" : "up to date (weights unchanged)"} in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${out}\n${files}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { console.error(`error: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); },
);
