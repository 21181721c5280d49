/**
 * Child of `pnpm bench generation` (see generation.ts): times `pnpm infer`'s generation on the
 * embedded default (models/lm4lv-tiny/denoise, ONNX Runtime engine) with the packages of the
 * checkout at `<root>`, which may be another one (e.g. a git worktree of an earlier commit).
 *
 *   node generation-child.js <root> '<json options>'   → one line "GENERATION_RESULT {...}"
 *
 * Nothing of this checkout is imported: every package (tfjs included) comes from `<root>`, so the
 * process runs that checkout's code alone. Calls are awaited, which also works where they were
 * synchronous, so the same child measures checkouts from before and after core's seams became
 * asynchronous.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const RESULT_TAG = "GENERATION_RESULT ";

export interface GenerationChildOptions {
  /** Export cache folder for this checkout (kept out of the checkout's models/). */
  cacheDir: string;
  /** ORT intra-op threads (default: ORT's default in that checkout, all cores). */
  threads?: number;
  /** Timed runs of each measurement (median reported). */
  runs: number;
}

/** Milliseconds: wall-clock (median and best of the runs) and CPU time (user + system, all threads of the process; median). */
export interface Ms {
  wall: number;
  best: number;
  cpu: number;
}

export interface GenerationChildResult {
  loadMs: number;
  visualTokens: number;
  promptTokens: number;
  /** `restore` of the bundled degraded example: encode, prompt, folded visual loop, decode. */
  perImage: Ms;
  /** The folded visual loop (`generateVisualTokensOrt`), per token after the prompt. */
  foldedPerToken: Ms;
  /** The sampler's `generateVisualTokens` over ORT's causal LM (tfjs adapters), per token after the prompt. */
  samplerPerToken: Ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Medians of `runs` timed calls after one warm-up. */
async function timeRuns(runs: number, fn: () => Promise<unknown>): Promise<Ms> {
  await fn(); // warm-up
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), best: Math.min(...wall), cpu: median(cpu) };
}

export async function generationChild(root: string, o: GenerationChildOptions): Promise<GenerationChildResult> {
  // types from this checkout (erased at run time), modules from `root`
  const load = <M>(pkg: string) => import(pathToFileURL(join(root, "packages", pkg, "dist", "index.js")).href) as Promise<M>;
  const core = await load<typeof import("@lm4lv/core")>("core");
  // loadOrtLM4LV is @lm4lv/onnx's; in checkouts from before it moved there, @lm4lv/pipeline's
  const pipeline = await load<Partial<Pick<typeof import("@lm4lv/onnx"), "loadOrtLM4LV">>>("pipeline");
  const onnx = await load<typeof import("@lm4lv/onnx")>("onnx");
  const sampler = await load<typeof import("@lm4lv/sampler")>("sampler");
  const tfPath = createRequire(join(root, "packages", "pipeline", "package.json")).resolve("@tensorflow/tfjs");
  const tf = (await import(pathToFileURL(tfPath).href)) as typeof import("@tensorflow/tfjs");
  await core.initBackend();

  const ckpt = join(root, "models", "lm4lv-tiny", "denoise");
  const t0 = performance.now();
  const { model, dir } = await (onnx.loadOrtLM4LV ?? pipeline.loadOrtLM4LV!)(ckpt, { cacheDir: o.cacheDir, threads: o.threads });
  const loadMs = performance.now() - t0;
  const lq = await model.fit(await core.readImage(join(root, "assets", "examples", "denoise", "degraded.png")));
  const perImage = await timeRuns(o.runs, async () => (await model.restore(lq)).features.dispose());

  // the visual loop alone, on the export `restore` used: per token = (t(n) − t(1)) / (n − 1)
  const ort = await onnx.loadOrtModels(dir, { intraOpThreads: o.threads });
  const n = model.numVisualTokens;
  const T = model.prompt().inputIds.length;
  const promptEmbeds = tf.randomNormal([1, T, ort.lm!.hiddenSize], 0, 0.02, "float32", 1) as import("@tensorflow/tfjs").Tensor3D;
  const perToken = async (run: (numTokens: number) => Promise<{ dispose(): void }>): Promise<Ms> => {
    const timed = (numTokens: number) => timeRuns(o.runs, async () => (await run(numTokens)).dispose());
    const one = await timed(1);
    const all = await timed(n);
    return { wall: (all.wall - one.wall) / (n - 1), best: (all.best - one.best) / (n - 1), cpu: (all.cpu - one.cpu) / (n - 1) };
  };
  const foldedPerToken = await perToken(async (numTokens) => await onnx.generateVisualTokensOrt({ step: ort.visualStep!, promptEmbeds, numTokens }));
  const samplerPerToken = await perToken(async (numTokens) => await sampler.generateVisualTokens({ lm: ort.lm!, adapters: model.adapters, promptEmbeds, numTokens }));
  promptEmbeds.dispose();
  ort.dispose();
  return { loadMs, visualTokens: n, promptTokens: T, perImage, foldedPerToken, samplerPerToken };
}

if (process.argv[1] && /generation-child\.(js|ts)$/.test(process.argv[1])) {
  const [root, json] = process.argv.slice(2);
  generationChild(root, JSON.parse(json) as GenerationChildOptions).then(
    (r) => {
      process.stdout.write(`${RESULT_TAG}${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (e) => {
      console.error(`error: ${e instanceof Error ? e.stack : String(e)}`);
      process.exit(1);
    },
  );
}
