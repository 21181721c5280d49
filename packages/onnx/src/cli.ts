#!/usr/bin/env node
/**
 * export-onnx <checkpoint-or-model-dir> <out-dir> [--quantize fp32|fp16|int8|int4] [--external-above BYTES]
 *   an LM4LV checkpoint (lm4lv.json): MAE encoder/decoder, Llama step + embedding, folded visual step
 *   a ViTMAE folder: encoder + decoder;  a Llama folder: step + embedding graphs
 * Re-running with unchanged weights reuses the export (manifest hash). fp32 goes to <out-dir>,
 * another --quantize setting to <out-dir>/<setting>, so each is cached on its own.
 */
import { existsSync, realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { initBackend } from "@lm4lv/core";
import { ensureExported, parseWeightFormat } from "./export.js";

type WeightFormat = ReturnType<typeof parseWeightFormat>;

/** The default of each option (the one place it lives). */
const DEFAULTS = { quantize: "fp32" as WeightFormat };

const USAGE = `usage: pnpm export-onnx <checkpoint-or-model-dir> <out-dir> [--quantize fp32|fp16|int8|int4] [--external-above BYTES]

  --quantize <fmt>        the LM's linear layers: fp32 (default ${DEFAULTS.quantize}, in <out-dir>), fp16, int8 (per output
                          channel) or int4 (blocks of 32) in <out-dir>/<fmt>; the MAE stays fp32
  --external-above <n>    initializers above n bytes go to <file>.onnx.data
  -h, --help              show this help`;

export class UsageError extends Error {}

export interface ExportCommand {
  src: string;
  out: string;
  quantize: WeightFormat;
  /** Bytes; omitted: the exporter's own threshold. */
  externalAbove?: number;
}

const FLAGS = { "external-above": { type: "string" }, quantize: { type: "string" }, help: { type: "boolean", short: "h" } } as const;

/**
 * argv → the export to run (undefined for --help). Unknown flags, bad values and a wrong number of
 * paths throw UsageError naming the flag.
 */
export function parseExportArgs(argv: string[]): ExportCommand | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return undefined;
  if (positionals.length !== 2) throw new UsageError(`expected <checkpoint-or-model-dir> <out-dir>, got ${positionals.length} path(s)`);
  const problems: string[] = [];
  let quantize = DEFAULTS.quantize;
  try {
    quantize = parseWeightFormat(values.quantize ?? DEFAULTS.quantize, "--quantize");
  } catch (e) {
    problems.push((e as Error).message);
  }
  const text = values["external-above"];
  const externalAbove = text === undefined ? undefined : text.trim() === "" ? NaN : Number(text);
  if (externalAbove !== undefined && !(externalAbove >= 0)) problems.push(`--external-above: expected a byte count >= 0, got "${text}"`);
  if (problems.length) throw new UsageError(problems.join("; "));
  return { src: positionals[0], out: positionals[1], quantize, externalAbove };
}

async function main(argv: string[]): Promise<number> {
  let cmd: ExportCommand | undefined;
  try {
    cmd = parseExportArgs(argv);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 1;
  }
  if (!cmd) {
    console.log(USAGE);
    return 0;
  }
  const { src, out, quantize, externalAbove } = cmd;
  if (!existsSync(src)) {
    console.error(`${src}: no such folder`);
    return 1;
  }
  await initBackend();
  const t0 = performance.now();
  const r = ensureExported(src, out, { externalAbove, quantize });
  const files = Object.entries(r.paths).map(([k, p]) => `  ${k}: ${p}`).join("\n");
  console.log(`${r.exported ? "exported" : "up to date (weights unchanged)"} (${quantize}) in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${r.dir}\n${files}`);
  return 0;
}

function isMain(): boolean {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
