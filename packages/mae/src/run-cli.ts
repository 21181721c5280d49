/**
 * The `mae` command line: `mae reconstruct <model-dir> <in> <out>`.
 * Parses options and calls the package; every failure is one message naming the file at fault.
 */
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { basename, extname, join } from "node:path";
import { initBackend, isImagePath, writeImage } from "@lm4lv/core";
import { ViTMAE } from "./model.js";

export interface CliIO {
  out: (line: string) => void;
  err: (line: string) => void;
}

const USAGE = `Usage: mae reconstruct <model-dir> <in> <out> [options]

Reconstructs images with a ViTMAE checkpoint (HF config.json + model.safetensors):
encode without masking, decode, de-normalise, clamp. Output images are image_size².

  <in>    an image file, or a folder of images
  <out>   for a file: the output image path (.png/.jpg/.webp) or a folder;
          for a folder: the output folder (one PNG per input, same base name)

Options:
  --backend <name>     tfjs backend: wasm | cpu | tensorflow | tensorflow-gpu (default: best available)
  --batch-size <n>     images per forward pass (default 8)
  -h, --help           show this help`;

class CliError extends Error {}

/** Input → output path pairs for `reconstruct`. */
function planOutputs(input: string, output: string): Array<{ src: string; dst: string }> {
  if (!existsSync(input)) throw new CliError(`${input}: no such file or folder`);
  if (statSync(input).isDirectory()) {
    const files = readdirSync(input).filter((f) => isImagePath(f) && statSync(join(input, f)).isFile()).sort();
    if (files.length === 0) throw new CliError(`${input}: folder holds no images (png, jpg, webp, ...)`);
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

async function reconstruct(args: string[], opts: { backend?: string; "batch-size"?: string }, io: CliIO): Promise<void> {
  if (args.length !== 3) throw new CliError(`reconstruct takes <model-dir> <in> <out>, got ${args.length} argument(s)\n\n${USAGE}`);
  const [modelDir, input, output] = args;
  const batchSize = opts["batch-size"] === undefined ? 8 : Number(opts["batch-size"]);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CliError(`--batch-size: expected a positive integer, got ${opts["batch-size"]}`);
  const jobs = planOutputs(input, output);
  const backend = await initBackend(opts.backend);
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
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { backend: { type: "string" }, "batch-size": { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    io.err(`mae: ${(e as Error).message}\n\n${USAGE}`);
    return 1;
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help) {
    io.out(USAGE);
    return 0;
  }
  try {
    if (command === "reconstruct") await reconstruct(rest, parsed.values, io);
    else throw new CliError(command ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
    return 0;
  } catch (e) {
    io.err(`mae: ${(e as Error).message}`);
    return 1;
  }
}
