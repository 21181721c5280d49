/**
 * The `mae` command line: `mae reconstruct <model-dir> <in> <out>`.
 * Parses options and calls the package; every failure is one message naming the file at fault.
 */
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { z } from "zod";
import { BACKEND_ORDER, initBackend, isImagePath, oneOf, positiveInt, validateConfig, writeImage } from "@lm4lv/core";
import { listImages } from "@lm4lv/data";
import { ViTMAE } from "./model.js";

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

class CliError extends Error {}

/** A number written as text → the number; anything else is left for the schema to reject. */
const numeric = (v: unknown) => (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v);

/** The options of `mae reconstruct`: the one place each default lives. */
export const RECONSTRUCT_OPTIONS = z.object({
  /** tfjs backend; omitted: the best available (LM4LV_BACKEND, then tensorflow-gpu → ... → cpu). */
  backend: oneOf([BACKEND_ORDER[0], ...BACKEND_ORDER.slice(1)]).optional(),
  /** Images per forward pass. */
  batchSize: z.preprocess(numeric, positiveInt()).default(8),
});

export type ReconstructOptions = z.output<typeof RECONSTRUCT_OPTIONS>;

const FLAGS = {
  backend: { type: "string" },
  "batch-size": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const FLAG_OF: Record<keyof ReconstructOptions, string> = { backend: "--backend", batchSize: "--batch-size" };

const USAGE = `Usage: mae reconstruct <model-dir> <in> <out> [options]

Reconstructs images with a ViTMAE checkpoint (HF config.json + model.safetensors):
encode without masking, decode, de-normalise, clamp. Output images are image_size².

  <in>    an image file, or a folder of images
  <out>   for a file: the output image path (.png/.jpg/.webp) or a folder;
          for a folder: the output folder (one PNG per input, same base name)

Options:
  --backend <name>     tfjs backend: ${BACKEND_ORDER.join(" | ")} (default: best available)
  --batch-size <n>     images per forward pass (default ${RECONSTRUCT_OPTIONS.shape.batchSize.def.defaultValue})
  -h, --help           show this help`;

export interface MaeCommand {
  /** "reconstruct", or undefined when none was given. */
  command: string | undefined;
  /** The command's positionals. */
  args: string[];
  options: ReconstructOptions;
  help: boolean;
}

/**
 * argv → the command, its paths and typed options. Unknown flags, bad values and a wrong number
 * of paths throw an error naming the flag or the command; with --help nothing is validated.
 */
export function parseMaeArgs(argv: string[]): MaeCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: FLAGS });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help) return { command, args, options: RECONSTRUCT_OPTIONS.parse({}), help: true };
  if (command === undefined) throw new CliError(USAGE);
  if (command !== "reconstruct") throw new CliError(`unknown command "${command}"\n\n${USAGE}`);
  if (args.length !== 3) throw new CliError(`reconstruct takes <model-dir> <in> <out>, got ${args.length} argument(s)\n\n${USAGE}`);
  const raw = { backend: values.backend, batchSize: values["batch-size"] };
  const where = (path: readonly PropertyKey[]) => FLAG_OF[path[0] as keyof ReconstructOptions] ?? String(path[0]);
  return { command, args, options: validateConfig(raw, RECONSTRUCT_OPTIONS, where, { error: CliError }), help: false };
}

/** Input → output path pairs for `reconstruct`. */
function planOutputs(input: string, output: string): Array<{ src: string; dst: string }> {
  if (!existsSync(input)) throw new CliError(`${input}: no such file or folder`);
  if (statSync(input).isDirectory()) {
    const files = listImages(input);
    if (existsSync(output) && !statSync(output).isDirectory()) throw new CliError(`${output}: input is a folder, so the output must be a folder`);
    mkdirSync(output, { recursive: true });
    return files.map((f) => ({ src: join(input, f), dst: join(output, `${basename(f, extname(f))}.png`) }));
  }
  if (!isImagePath(input)) throw new CliError(`${input}: not an image file (by its extension)`);
  const toFolder = (existsSync(output) && statSync(output).isDirectory()) || extname(output) === "";
  if (toFolder) {
    mkdirSync(output, { recursive: true });
    return [{ src: input, dst: join(output, `${basename(input, extname(input))}.png`) }];
  }
  return [{ src: input, dst: output }];
}

async function reconstruct([modelDir, input, output]: string[], options: ReconstructOptions, io: CliIO): Promise<void> {
  const { batchSize } = options;
  const jobs = planOutputs(input, output);
  const backend = await initBackend(options.backend);
  const mae = ViTMAE.fromPretrained(modelDir);
  try {
    for (let i = 0; i < jobs.length; i += batchSize) {
      const batch = jobs.slice(i, i + batchSize);
      const images = await mae.reconstruct(batch.map((j) => j.src), { batchSize });
      for (let k = 0; k < batch.length; k++) {
        await writeImage(batch[k].dst, images[k]);
        io.out(`${batch[k].src} → ${batch[k].dst}`);
      }
    }
    io.err(`reconstructed ${jobs.length} image(s) with ${modelDir} on ${backend}`);
  } finally {
    mae.dispose();
  }
}

/** Runs the CLI; returns the exit code (0 ok, 1 error). */
export async function main(argv: string[], io: CliIO = { out: (l) => console.log(l), err: (l) => console.error(l) }): Promise<number> {
  try {
    const cmd = parseMaeArgs(argv);
    if (cmd.help) {
      io.out(USAGE);
      return 0;
    }
    await reconstruct(cmd.args, cmd.options, io);
    return 0;
  } catch (e) {
    io.err(`mae: ${(e as Error).message}`);
    return 1;
  }
}
