#!/usr/bin/env node
/**
 * export-onnx <checkpoint-or-model-dir> <out-dir> [--quantize fp32|fp16|int8|int4] [--int4-block-size 32|64|128] [--external-above BYTES]
 *   (options: EXPORT_OPTIONS, parsed by core's parseCommandLine)
 *   an LM4LV checkpoint (lm4lv.json): MAE encoder/decoder, Llama step + embedding, folded visual step
 *   a ViTMAE folder: encoder + decoder;  a Llama folder: step + embedding graphs
 * Re-running with unchanged weights reuses the export (manifest hash). fp32 goes to <out-dir>,
 * another --quantize setting to <out-dir>/<setting> (int4 with --int4-block-size 64 or 128 to
 * <out-dir>/int4-b64, int4-b128), so each is cached on its own.
 */
import { existsSync, realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { initBackend, nonNegativeNumber, numeric, oneOf, parseCommandLine, usageText } from "@lm4lv/core";
import { INT4_BLOCK_SIZES, WEIGHT_FORMATS, weightSettingName } from "./available.js";
import { ensureExported } from "./export.js";

/** The options of export-onnx: the one place each default lives. */
export const EXPORT_OPTIONS = z
  .object({
    quantize: oneOf(WEIGHT_FORMATS)
      .default("fp32")
      .describe("the LM's linear layers: fp32 (in <out-dir>), fp16, int8 (per output channel)\nor int4 (blocks of 32) in <out-dir>/<format>; the MAE stays fp32"),
    /** Omitted: 32 (the exporter's default). */
    int4BlockSize: z
      .preprocess(numeric, z.literal(INT4_BLOCK_SIZES, `expected one of ${INT4_BLOCK_SIZES.join(", ")}`))
      .optional()
      .describe("with --quantize int4: weights per block, 32 (default), 64 or 128 (fewer scales,\nlarger error; docs/scale.md); 64 and 128 go to <out-dir>/int4-b<size>"),
    /** Bytes; omitted: the exporter's own threshold. */
    externalAbove: z.preprocess(numeric, nonNegativeNumber("expected a byte count >= 0")).optional().describe("initializers above this many bytes go to <file>.onnx.data"),
  })
  .superRefine((o, ctx) => {
    if (o.int4BlockSize !== undefined && o.quantize !== "int4") {
      ctx.addIssue({ code: "custom", path: ["int4BlockSize"], input: o.int4BlockSize, message: `only with --quantize int4 (--quantize is ${o.quantize})` });
    }
  });

const PATHS = "<checkpoint-or-model-dir> <out-dir>";

const USAGE = usageText(`usage: pnpm export-onnx ${PATHS} [options]`, EXPORT_OPTIONS);

export interface ExportCommand extends z.output<typeof EXPORT_OPTIONS> {
  src: string;
  out: string;
}

/**
 * argv → the export to run (undefined for --help). Unknown flags, bad values and a wrong number of
 * paths throw core's UsageError naming the flag, all problems at once.
 */
export function parseExportArgs(argv: string[]): ExportCommand | undefined {
  const { options, positionals, help } = parseCommandLine(argv, EXPORT_OPTIONS, { positionals: PATHS });
  if (help) return undefined;
  return { src: positionals[0], out: positionals[1], ...options };
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
  const { src, out, quantize, int4BlockSize, externalAbove } = cmd;
  if (!existsSync(src)) {
    console.error(`${src}: no such folder`);
    return 1;
  }
  await initBackend();
  const t0 = performance.now();
  const r = ensureExported(src, out, { externalAbove, quantize, int4BlockSize });
  const files = Object.entries(r.paths).map(([k, p]) => `  ${k}: ${p}`).join("\n");
  console.log(`${r.exported ? "exported" : "up to date (weights unchanged)"} (${weightSettingName(quantize, int4BlockSize)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${r.dir}\n${files}`);
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
