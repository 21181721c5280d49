/**
 * The options of `pnpm infer`: one zod schema, whose inferred type is what runInfer reads. Every
 * problem names the flag it came from (`--threads: expected a positive integer, got "x"`), or the
 * LM4LV_ENGINE variable for an engine taken from the environment.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { oneOf, positiveInt, validateConfig } from "@lm4lv/core";
import { WEIGHT_FORMATS } from "@lm4lv/onnx/available";

/** A number written as text → the number; anything else is left for the schema to reject. */
const numeric = (v: unknown) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

export const INFER_OPTIONS = z
  .object({
    checkpoint: z.string().optional(),
    task: z.string().default("denoise"),
    mae: z.string().optional(),
    llm: z.string().optional(),
    tokenizer: z.string().optional(),
    clean: z.string().optional(),
    out: z.string().default(join("out", "infer")),
    json: z.boolean().default(false),
    engine: oneOf(["ort", "tfjs"]).optional(),
    threads: z.preprocess(numeric, positiveInt()).optional(),
    quantize: oneOf(WEIGHT_FORMATS).optional(),
    cache: z.string().optional(),
    maeBaseline: z.boolean().default(true),
  })
  .superRefine((o, ctx) => {
    if (o.quantize !== undefined && o.quantize !== "fp32" && o.engine === "tfjs") {
      ctx.addIssue({ code: "custom", path: ["quantize"], input: o.quantize, message: "needs the ONNX Runtime engine (--engine ort); tfjs runs fp32 weights" });
    }
  });

export type InferOptions = z.output<typeof INFER_OPTIONS>;

export class InferOptionsError extends Error {}

const FLAGS = {
  checkpoint: { type: "string" },
  task: { type: "string" },
  mae: { type: "string" },
  llm: { type: "string" },
  tokenizer: { type: "string" },
  clean: { type: "string" },
  out: { type: "string" },
  json: { type: "boolean" },
  engine: { type: "string" },
  threads: { type: "string" },
  quantize: { type: "string" },
  cache: { type: "string" },
  "no-mae-baseline": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * argv (and LM4LV_ENGINE from `env`) → typed options and the inputs. Unknown flags throw node's
 * parseArgs error; bad values throw InferOptionsError naming the flag. With --help nothing is validated.
 */
export function parseInferOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): { options: InferOptions; positionals: string[]; help: boolean } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: FLAGS });
  if (values.help) return { options: INFER_OPTIONS.parse({}), positionals, help: true };
  const { "no-mae-baseline": noBaseline, help: _help, ...given } = values;
  const fromEnv = given.engine === undefined && env.LM4LV_ENGINE ? env.LM4LV_ENGINE : undefined;
  const raw = { ...given, engine: given.engine ?? fromEnv, maeBaseline: noBaseline ? false : undefined };
  const where = (path: readonly PropertyKey[]) => {
    const name = String(path[0]);
    if (name === "engine" && fromEnv !== undefined) return "LM4LV_ENGINE";
    return name === "maeBaseline" ? "--no-mae-baseline" : `--${name}`;
  };
  return { options: validateConfig(raw, INFER_OPTIONS, where, { error: InferOptionsError }), positionals, help: false };
}
