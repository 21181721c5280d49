/**
 * ONNX Runtime as the inference engine of an LM4LV checkpoint: the MAE encoder/decoder and the
 * folded visual step (adapter → LLM step → final norm → de-adapter) are exported once from the
 * loaded weights into `<checkpoint>/onnx/` (rebuilt when the weights change), then run in ORT.
 */
import { join } from "node:path";
import type { LM4LV } from "./lm4lv.js";

export interface OrtEngineOptions {
  /** Export folder (default `<checkpoint>/onnx`). */
  cacheDir?: string;
  /** ORT intra-op threads (default: the number of cores). */
  threads?: number;
  /** "folded" (one ORT call per visual token, default) or "step" (the sampler over ORT's causal LM). */
  loop?: "folded" | "step";
}

/** True when onnxruntime-node loads on this machine. */
export async function ortAvailable(): Promise<boolean> {
  try {
    await import("onnxruntime-node");
    return true;
  } catch {
    return false;
  }
}

/** Returns a copy of `model` that runs inference in ONNX Runtime; `exported` tells whether the export was (re)built. */
export async function withOrtEngine(model: LM4LV, checkpoint: string, opts: OrtEngineOptions = {}): Promise<{ model: LM4LV; exported: boolean; cacheDir: string }> {
  const onnx = await import("@lm4lv/onnx");
  const cacheDir = opts.cacheDir ?? join(checkpoint, "onnx");
  const { models } = model;
  const { exported } = onnx.ensureExported({ mae: models.visionDir, llm: models.llmDir, adapters: checkpoint }, cacheDir);
  const ort = onnx.loadOrtModels(cacheDir, { intraOpThreads: opts.threads });
  if (!ort.vision || !ort.lm || !ort.visualStep) {
    ort.dispose();
    throw new Error(`${cacheDir}: the ONNX export lacks the vision, LM or visual-step graph`);
  }
  const step = ort.visualStep;
  const engine = model.withGenerationEngine({
    name: "onnxruntime",
    vision: ort.vision,
    lm: ort.lm,
    generate: (opts.loop ?? "folded") === "folded" ? (promptEmbeds, numTokens) => onnx.generateVisualTokensOrt({ step, promptEmbeds, numTokens }) : undefined,
    dispose: () => ort.dispose(),
  });
  return { model: engine, exported, cacheDir };
}
