/**
 * ONNX Runtime sessions with a synchronous `run`.
 *
 * core's `VisionModel` / `CausalLM` interfaces are synchronous, and onnxruntime-node's native
 * session runs synchronously too: its public `InferenceSession.run` only wraps the native call in
 * a Promise (setImmediate). `OrtSession` calls the native session object of onnxruntime-node's
 * own binding (`dist/binding.js`, the file its public backend uses) directly, so a run blocks
 * like a tfjs `dataSync()` does. `runAsync` goes through the public API.
 */
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";

export interface OrtSessionOptions {
  /** Threads of one operator (default: number of CPU cores). */
  intraOpThreads?: number;
  /** Graph optimisation level (default "all"). */
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  /** Write the optimised graph here (inspection only). */
  optimizedModelPath?: string;
}

interface NativeSession {
  loadModel(path: string, options: object): void;
  readonly inputMetadata: { name: string }[];
  readonly outputMetadata: { name: string }[];
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, ort.Tensor>;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let native: NativeBinding | undefined;

function nativeBinding(): NativeBinding {
  if (!native) {
    const require = createRequire(import.meta.url);
    const main = require.resolve("onnxruntime-node"); // .../onnxruntime-node/dist/index.js
    native = require(join(dirname(main), "binding.js")) as NativeBinding;
    native.initOrt();
  }
  return native;
}

export function sessionOptions(opts: OrtSessionOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = opts.intraOpThreads ?? cpus().length;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`intraOpThreads must be a positive integer, got ${threads}`);
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: ["cpu"],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? "all",
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
  };
  if (opts.optimizedModelPath) o.optimizedModelFilePath = opts.optimizedModelPath;
  return o;
}

/** One loaded model file (with its external data beside it, if any). */
export class OrtSession {
  readonly path: string;
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly session: NativeSession;
  private readonly fetches: Record<string, null>;
  private disposed = false;

  constructor(path: string, opts: OrtSessionOptions = {}) {
    this.path = path;
    const { binding } = nativeBinding();
    this.session = new binding.InferenceSession();
    try {
      this.session.loadModel(path, sessionOptions(opts));
    } catch (e) {
      throw new Error(`ONNX Runtime could not load ${path}: ${(e as Error).message}`);
    }
    this.inputNames = this.session.inputMetadata.map((m) => m.name);
    this.outputNames = this.session.outputMetadata.map((m) => m.name);
    this.fetches = Object.fromEntries(this.outputNames.map((n) => [n, null]));
  }

  /** Runs the model synchronously; every input must be given. Returns all outputs by name. */
  run(feeds: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
    if (this.disposed) throw new Error(`${this.path}: session was disposed`);
    for (const n of this.inputNames) if (!feeds[n]) throw new Error(`${this.path}: missing input "${n}"`);
    try {
      return this.session.run(feeds, this.fetches, {});
    } catch (e) {
      const shapes = Object.entries(feeds).map(([k, t]) => `${k} [${t.dims}]`).join(", ");
      throw new Error(`${this.path}: run failed (${shapes}): ${(e as Error).message}`);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.session.dispose();
    this.disposed = true;
  }
}

/** Async session through onnxruntime-node's public API (same options). */
export function createAsyncSession(path: string, opts: OrtSessionOptions = {}): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, sessionOptions(opts));
}
