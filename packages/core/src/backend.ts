/**
 * Run-time choice of the TensorFlow.js backend.
 *
 * Order: tfjs-node-gpu → tfjs-node → wasm → cpu. The native packages are optional
 * dependencies whose install script downloads libtensorflow; where that did not
 * happen their binding file is missing and importing them would throw, so the file
 * is checked first. `LM4LV_BACKEND` (or the `preferred` argument) forces one.
 */
import * as tf from "@tensorflow/tfjs";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { registerFastWasmBatchMatMul } from "./wasm-matmul.js";
import { registerWasmUnsortedSegmentSum } from "./wasm-segment-sum.js";

export type BackendName = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";
export const BACKEND_ORDER: readonly BackendName[] = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"];

const require = createRequire(import.meta.url);
let current: BackendName | undefined;

/** True when the named tfjs-node package is installed with its native binding. */
export function nativeBindingAvailable(pkg: "@tensorflow/tfjs-node" | "@tensorflow/tfjs-node-gpu"): boolean {
  let root: string;
  try {
    root = dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return false;
  }
  const lib = join(root, "lib");
  if (!existsSync(lib)) return false;
  return readdirSync(lib).some((d) => d.startsWith("napi-v") && existsSync(join(lib, d, "tfjs_binding.node")));
}

async function tryBackend(name: BackendName): Promise<boolean> {
  try {
    if (name === "tensorflow-gpu" || name === "tensorflow") {
      const pkg = name === "tensorflow-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
      if (!nativeBindingAvailable(pkg)) return false;
      await import(pkg);
      return await tf.setBackend("tensorflow");
    }
    if (name === "wasm") {
      await import("@tensorflow/tfjs-backend-wasm");
      const ok = await tf.setBackend("wasm");
      if (ok) {
        registerFastWasmBatchMatMul();
        registerWasmUnsortedSegmentSum();
      }
      return ok;
    }
    return await tf.setBackend("cpu");
  } catch {
    return false;
  }
}

function parseName(value: string, source: string): BackendName {
  const v = value.trim().toLowerCase();
  const alias: Record<string, BackendName> = { gpu: "tensorflow-gpu", node: "tensorflow", "tfjs-node": "tensorflow", "tfjs-node-gpu": "tensorflow-gpu" };
  const name = (alias[v] ?? v) as BackendName;
  if (!BACKEND_ORDER.includes(name)) {
    throw new Error(`${source}: unknown tfjs backend "${value}" (expected one of ${BACKEND_ORDER.join(", ")})`);
  }
  return name;
}

/**
 * Selects and initialises a backend; returns the one that runs.
 * A forced backend (argument or LM4LV_BACKEND) that cannot load is an error, not a silent fallback.
 */
export async function initBackend(preferred?: BackendName | string): Promise<BackendName> {
  const forcedRaw = preferred ?? process.env.LM4LV_BACKEND;
  if (forcedRaw) {
    const forced = parseName(forcedRaw, preferred ? "initBackend" : "LM4LV_BACKEND");
    if (current === forced && tf.getBackend() === backendTfName(forced)) return forced;
    if (!(await tryBackend(forced))) throw new Error(`tfjs backend "${forced}" is not available on this machine`);
    await tf.ready();
    current = forced;
    return forced;
  }
  if (current && tf.getBackend() === backendTfName(current)) return current;
  for (const name of BACKEND_ORDER) {
    if (await tryBackend(name)) {
      await tf.ready();
      current = name;
      return name;
    }
  }
  throw new Error("no tfjs backend could be initialised");
}

function backendTfName(b: BackendName): string {
  return b === "tensorflow-gpu" ? "tensorflow" : b;
}

/** The backend selected by initBackend, or undefined before it ran. */
export function currentBackend(): BackendName | undefined {
  return current;
}
