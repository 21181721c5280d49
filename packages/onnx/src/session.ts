/**
 * ONNX Runtime sessions through onnxruntime-node's public API (`InferenceSession`).
 *
 * core's `VisionModel` / `CausalLM` seams are asynchronous, as `InferenceSession.run` is:
 * `OrtSession.create` opens a model file, `run` checks the feeds and awaits the run.
 */
import { cpus } from "node:os";
import * as ort from "onnxruntime-node";

export interface OrtSessionOptions {
  /** Threads of one operator (default: number of CPU cores). */
  intraOpThreads?: number;
  /** Graph optimisation level (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Write the optimised graph here (inspection only). */
  optimizedModelPath?: string;
  /**
   * ONNX Runtime execution providers, in order of preference (default: the comma-separated list in
   * the environment variable `LM4LV_ORT_PROVIDERS`, else `["cpu"]`). Only "cpu" has run here; "cuda"
   * needs onnxruntime-node's CUDA 12 binaries (docs/scale.md).
   */
  executionProviders?: readonly string[];
  /**
   * Let kernels copy constant weights into their own layout at load (ORT's pre-packing; default
   * true). false sets the session config entry `session.disable_prepacking`.
   */
  prepacking?: boolean;
  /** ORT's CPU memory arena (default true). */
  cpuMemArena?: boolean;
  /** ORT's memory-pattern planning (default true). */
  memPattern?: boolean;
  /**
   * ONNX Runtime session config entries (`session.*`, `mlas.*`, … key → string value), merged over
   * the entries from the environment variable `LM4LV_ORT_CONFIG` ("key=value,key=value").
   */
  sessionConfig?: Readonly<Record<string, string>>;
}

/** Provider names onnxruntime-node knows (its `InferenceSession.ExecutionProviderName`s on some platform). */
export const ORT_PROVIDERS = ["cpu", "cuda", "tensorrt", "dml", "webgpu", "coreml"] as const;

/** `opts.executionProviders`, else `LM4LV_ORT_PROVIDERS` ("cuda,cpu"), else ["cpu"]; names are checked. */
export function executionProviders(opts: OrtSessionOptions = {}, env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = env.LM4LV_ORT_PROVIDERS?.trim();
  const where = opts.executionProviders ? "executionProviders" : "LM4LV_ORT_PROVIDERS";
  const list = opts.executionProviders ? [...opts.executionProviders] : fromEnv ? fromEnv.split(",").map((p) => p.trim().toLowerCase()) : ["cpu"];
  if (!list.length) throw new RangeError(`${where}: empty provider list`);
  for (const p of list) {
    if (!(ORT_PROVIDERS as readonly string[]).includes(p)) throw new RangeError(`${where}: unknown execution provider "${p}" (known: ${ORT_PROVIDERS.join(", ")})`);
  }
  return list;
}

/** `LM4LV_ORT_CONFIG` ("key=value,key=value") merged under `opts.sessionConfig` and the entries the options imply. */
export function sessionConfig(opts: OrtSessionOptions = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  const fromEnv = env.LM4LV_ORT_CONFIG?.trim();
  if (fromEnv) {
    for (const entry of fromEnv.split(",")) {
      const eq = entry.indexOf("=");
      const key = entry.slice(0, eq).trim();
      if (eq < 1 || !key) throw new RangeError(`LM4LV_ORT_CONFIG: expected key=value, got "${entry.trim()}"`);
      out[key] = entry.slice(eq + 1).trim();
    }
  }
  Object.assign(out, opts.sessionConfig);
  if (opts.prepacking !== undefined) out["session.disable_prepacking"] = opts.prepacking ? "0" : "1";
  for (const [k, v] of Object.entries(out)) if (typeof v !== "string") throw new RangeError(`sessionConfig: the value of "${k}" must be a string`);
  return out;
}

export function sessionOptions(opts: OrtSessionOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = opts.intraOpThreads ?? cpus().length;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`intraOpThreads must be a positive integer, got ${threads}`);
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: executionProviders(opts),
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
  };
  if (opts.optimizedModelPath) o.optimizedModelFilePath = opts.optimizedModelPath;
  if (opts.cpuMemArena !== undefined) o.enableCpuMemArena = opts.cpuMemArena;
  if (opts.memPattern !== undefined) o.enableMemPattern = opts.memPattern;
  const extra = sessionConfig(opts);
  if (Object.keys(extra).length) o.extra = extra;
  return o;
}

/** One loaded model file (with its external data beside it, if any). */
export class OrtSession {
  private disposed = false;

  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Opens `path` in ONNX Runtime (`sessionOptions(opts)`: CPU unless providers are given). */
  static async create(path: string, opts: OrtSessionOptions = {}): Promise<OrtSession> {
    const options = sessionOptions(opts);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, options);
    } catch (e) {
      throw new Error(`ONNX Runtime could not load ${path}: ${(e as Error).message}`);
    }
    return new OrtSession(path, session);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the model; every input must be given. Resolves to all outputs by name. */
  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    if (this.disposed) throw new Error(`${this.path}: session was disposed`);
    for (const n of this.session.inputNames) if (!feeds[n]) throw new Error(`${this.path}: missing input "${n}"`);
    try {
      return await this.session.run(feeds);
    } catch (e) {
      const shapes = Object.entries(feeds).map(([k, t]) => `${k} [${t.dims}]`).join(", ");
      throw new Error(`${this.path}: run failed (${shapes}): ${(e as Error).message}`);
    }
  }

  /**
   * Frees the native session (idempotent; a later run is refused). onnxruntime-node releases it
   * at once; `release()`'s Promise only reports the outcome, awaited by `release` here.
   */
  dispose(): void {
    void this.release().catch(() => undefined);
  }

  /** `dispose`, awaiting ONNX Runtime's `release()`. */
  async release(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}
