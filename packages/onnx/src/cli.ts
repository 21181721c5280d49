#!/usr/bin/env node
/**
 * export-onnx <checkpoint-or-model-dir> <out-dir> [--quantize fp32|fp16|int8|int4] [--external-above BYTES]
 *   an LM4LV checkpoint (lm4lv.json): MAE encoder/decoder, Llama step + embedding, folded visual step
 *   a ViTMAE folder: encoder + decoder;  a Llama folder: step + embedding graphs
 * Re-running with unchanged weights reuses the export (manifest hash). fp32 goes to <out-dir>,
 * another --quantize setting to <out-dir>/<setting>, so each is cached on its own.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { initBackend } from "@lm4lv/core";
import { ensureExported, parseWeightFormat } from "./export.js";

const USAGE = `usage: pnpm export-onnx <checkpoint-or-model-dir> <out-dir> [--quantize fp32|fp16|int8|int4] [--external-above BYTES]

  --quantize <fmt>        the LM's linear layers: fp32 (default, in <out-dir>), fp16, int8 (per output
                          channel) or int4 (blocks of 32) in <out-dir>/<fmt>; the MAE stays fp32
  --external-above <n>    initializers above n bytes go to <file>.onnx.data`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { "external-above": { type: "string" }, quantize: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) { console.log(USAGE); return 0; }
  if (positionals.length !== 2) { console.error(USAGE); return 1; }
  const [src, out] = positionals;
  if (!existsSync(src)) { console.error(`${src}: no such folder`); return 1; }
  const externalAbove = values["external-above"] === undefined ? undefined : Number(values["external-above"]);
  if (externalAbove !== undefined && !(externalAbove >= 0)) { console.error(`--external-above: expected a byte count, got "${values["external-above"]}"`); return 1; }
  let quantize;
  try {
    quantize = parseWeightFormat((values.quantize as string | undefined) ?? "fp32", "--quantize");
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  await initBackend();
  const t0 = performance.now();
  const r = ensureExported(src, out, { externalAbove, quantize });
  const files = Object.entries(r.paths).map(([k, p]) => `  ${k}: ${p}`).join("\n");
  console.log(`${r.exported ? "exported" : "up to date (weights unchanged)"} (${quantize}) in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${r.dir}\n${files}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => { console.error(`error: ${e instanceof Error ? e.message : String(e)}`); process.exit(1); },
);
