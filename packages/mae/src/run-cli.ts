/**
 * The `mae` command line: `mae reconstruct <model-dir> <in> <out>`.
 * Parses options and calls the package; every failure is one message naming the file at fault.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { z } from "zod";
import { BACKEND_ORDER, checkPositionals, initBackend, isImagePath, listImages, numeric, oneOf, parseCommandLine, positiveInt, usageText, UsageError, writeImage } from "@lm4lv/core";
import { ViTMAE } from "./model.js";

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The options of `mae reconstruct`: the one place each default lives. */
export const RECONSTRUCT_OPTIONS = z.object({
  /** tfjs backend; omitted: the best available (LM4LV_BACKEND, then tensorflow-gpu → ... → cpu). */
  backend: oneOf([BACKEND_ORDER[0], ...BACKEND_ORDER.slice(1)]).optional().describe("tfjs backend (default: the best available)"),
  /** Images per forward pass. */
  batchSize: z.preprocess(numeric, positiveInt()).default(8).describe("images per forward pass"),
});

export type ReconstructOptions = z.output<typeof RECONSTRUCT_OPTIONS>;

const RECONSTRUCT_PATHS = "<model-dir> <in> <out>";

const USAGE = usageText(
  `Usage: mae reconstruct ${RECONSTRUCT_PATHS} [options]

Reconstructs images with a ViTMAE checkpoint (HF config.json + model.safetensors):
encode without masking, decode, de-normalise, clamp. Output images are image_size².

  <in>    an image file, or a folder of images
  <out>   for a file: the output image path (.png/.jpg/.webp) or a folder;
          for a folder: the output folder (one PNG per input, same base name)`,
  RECONSTRUCT_OPTIONS,
  { title: "Options:" },
);

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
 * of paths throw core's UsageError naming the flag or the command (with the usage, but for a bad
 * value); with --help nothing is validated.
 */
export function parseMaeArgs(argv: string[]): MaeCommand {
  const withUsage = (message: string) => new UsageError(`${message}\n\n${USAGE}`);
  // the command first (flags known, nothing validated), then its options
  let first;
  try {
    first = parseCommandLine(argv, z.object({}), { allow: [RECONSTRUCT_OPTIONS] });
  } catch (e) {
    throw withUsage((e as Error).message);
  }
  const [command, ...args] = first.positionals;
  if (first.help) return { command, args, options: RECONSTRUCT_OPTIONS.parse({}), help: true };
  if (command === undefined) throw new UsageError(USAGE);
  if (command !== "reconstruct") throw withUsage(`unknown command "${command}"`);
  try {
    checkPositionals(args, RECONSTRUCT_PATHS);
  } catch (e) {
    throw withUsage(`reconstruct: ${(e as Error).message}`);
  }
  return { command, args, options: parseCommandLine(argv, RECONSTRUCT_OPTIONS).options, help: false };
}

/** Input → output path pairs for `reconstruct`. */
function planOutputs(input: string, output: string): Array<{ src: string; dst: string }> {
  if (!existsSync(input)) throw new UsageError(`${input}: no such file or folder`);
  if (statSync(input).isDirectory()) {
    const files = listImages(input);
    if (existsSync(output) && !statSync(output).isDirectory()) throw new UsageError(`${output}: input is a folder, so the output must be a folder`);
    mkdirSync(output, { recursive: true });
    return files.map((f) => ({ src: join(input, f), dst: join(output, `${basename(f, extname(f))}.png`) }));
  }
  if (!isImagePath(input)) throw new UsageError(`${input}: not an image file (by its extension)`);
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
