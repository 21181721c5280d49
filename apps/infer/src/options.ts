/**
 * The options of `pnpm infer`: one zod schema, whose inferred type is what runInfer reads, parsed by
 * core's parseCommandLine. Every problem names the flag it came from (`--threads: expected a positive integer, got "x"`), or the
 * LM4LV_ENGINE variable for an engine taken from the environment.
 */
import { join } from "node:path";
import { z } from "zod";
import { numeric, oneOf, parseCommandLine, positiveInt } from "@lm4lv/core";
import { INT4_BLOCK_SIZES, WEIGHT_FORMATS } from "@lm4lv/onnx/available";

export const INFER_OPTIONS = z
  .object({
    checkpoint: z.string().optional().describe("LM4LV checkpoint folder (adapters.safetensors + lm4lv.json)"),
    task: z.string().default("denoise").describe("a shipped checkpoint under models/lm4lv-tiny/<task>"),
    mae: z.string().optional().describe("MAE folder to use instead of the one named in lm4lv.json"),
    llm: z.string().optional().describe("LLM folder to use instead of the one named in lm4lv.json (with its tokenizer)"),
    tokenizer: z
      .string()
      .optional()
      .describe("tokenizer folder, when it is not the LLM's\n(without these: lm4lv.json's folders relative to the checkpoint, else by name\nunder the repository's models/, so a copied checkpoint folder still loads)"),
    clean: z.string().optional().describe("clean target file or folder for PSNR/SSIM (a pairs.json carries its own)"),
    out: z.string().default(join("out", "infer")).describe("output folder"),
    json: z.boolean().default(false).describe("print the results as JSON"),
    engine: oneOf(["ort", "tfjs"]).optional().describe("inference engine (default: ort when onnxruntime-node loads, else tfjs;\nLM4LV_ENGINE); the ONNX export is cached in <checkpoint>/onnx and rebuilt when weights change"),
    threads: z.preprocess(numeric, positiveInt()).optional().describe("ONNX Runtime threads (default: all cores)"),
    quantize: oneOf(WEIGHT_FORMATS).optional().describe("LM weights on ONNX Runtime: fp32 (default), fp16, int8 (per output channel)\nor int4 (blocks of 32); each format is exported once, to <cache>/<format>"),
    int4BlockSize: z
      .preprocess(numeric, z.literal(INT4_BLOCK_SIZES, `expected one of ${INT4_BLOCK_SIZES.join(", ")}`))
      .optional()
      .describe("with --quantize int4: weights per block, 32 (default), 64 or 128 (fewer scales and\nless memory, a larger error: docs/scale.md); exported to <cache>/int4-b<size>"),
    cache: z.string().optional().describe("ONNX export folder (default <checkpoint>/onnx)"),
    lowMemory: z.boolean().default(false).describe("free the MAE encoder while the LM generates (ONNX Runtime; reloaded for the next\nimage): a lower peak memory for large models (docs/scale.md), slower per image"),
    maeBaseline: z.boolean().default(true).describe("skip the MAE-reconstruction baseline score"),
  })
  .superRefine((o, ctx) => {
    if (o.quantize !== undefined && o.quantize !== "fp32" && o.engine === "tfjs") {
      ctx.addIssue({ code: "custom", path: ["quantize"], input: o.quantize, message: "needs the ONNX Runtime engine (--engine ort); tfjs runs fp32 weights" });
    }
    if (o.int4BlockSize !== undefined && o.quantize !== "int4") {
      ctx.addIssue({ code: "custom", path: ["int4BlockSize"], input: o.int4BlockSize, message: `only with --quantize int4 (${o.quantize === undefined ? "no --quantize given" : `--quantize is ${o.quantize}`})` });
    }
  });

export type InferOptions = z.output<typeof INFER_OPTIONS>;

/**
 * argv (and LM4LV_ENGINE from `env`) → typed options and the inputs (at most one). Unknown flags and
 * bad values throw core's UsageError naming the flag (or LM4LV_ENGINE). With --help nothing is validated.
 */
export function parseInferOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): { options: InferOptions; positionals: string[]; help: boolean } {
  const engine = env.LM4LV_ENGINE ? { value: env.LM4LV_ENGINE, from: "LM4LV_ENGINE" } : undefined;
  const { options, positionals, help } = parseCommandLine(argv, INFER_OPTIONS, { positionals: "[<image|folder|pairs.json>]", fallback: { engine } });
  return { options: help ? INFER_OPTIONS.parse({}) : options, positionals, help };
}
