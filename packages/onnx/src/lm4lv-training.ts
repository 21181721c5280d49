/**
 * LM4LV training on ONNX Runtime: the gradient engine that `trainLM4LV` of @lm4lv/pipeline takes
 * as `gradients` (engine "ort").
 *
 *   pairs → MAE encoder (ORT; each distinct image once, `FeatureCache`) → features [B, 2, 1+N, Dv]
 *         → LM4LV training graph (adapter → frozen Llama → CE + MSE, reverse pass) → adapter and
 *           task-token gradients
 */
import * as ort from "onnxruntime-node";
import { ViTMAE, preprocessImages } from "@lm4lv/mae";
import { LlamaForCausalLM } from "@lm4lv/llm";
import { FeatureCache, type LM4LV, type LM4LVEngineRun, type LM4LVGradients, type LM4LVPair } from "@lm4lv/pipeline";
import { sourceHash } from "./export.js";
import { sessionOptions } from "./session.js";
import { OrtTrainingSession } from "./training.js";
import { buildLM4LVTrainingGraph } from "./train-llama.js";
import { buildViTEncoder } from "./vit-export.js";

/**
 * LM4LV gradients on ONNX Runtime: the frozen MAE encodes each distinct image once (ORT encoder,
 * features cached by content and the MAE weights' hash), then one training graph per batch size
 * computes CE + MSE and the adapter / task-token gradients with the LLM frozen in the graph.
 * The model must hold the tfjs models (`loadModels`): the graphs are built from their weights.
 */
export async function ortLM4LVGradients(model: LM4LV, opts: LM4LVEngineRun = {}): Promise<LM4LVGradients & { cache: FeatureCache }> {
  const { vision, lm } = model.models;
  if (!(vision instanceof ViTMAE)) throw new Error("ORT training needs the tfjs ViTMAE weights (load the models with loadModels)");
  if (!(lm instanceof LlamaForCausalLM)) throw new Error("ORT training needs a LlamaForCausalLM (load the models with loadModels)");
  const sessionOpts = { intraOpThreads: opts.threads };
  const encoder = await ort.InferenceSession.create(buildViTEncoder(vision).toBytes(), sessionOptions(sessionOpts));
  const n1 = vision.numTokens;
  const dv = vision.hiddenSize;
  const size = vision.imageSize;
  const cache = new FeatureCache(sourceHash({ mae: model.models.visionDir }), async (images) => {
    const px = preprocessImages(images); // [n, 3, S, S]
    const input = new ort.Tensor("float32", px.dataSync() as Float32Array, [images.length, 3, size, size]);
    px.dispose();
    const out = (await encoder.run({ pixel_values: input })).features.data as Float32Array; // [n, 1+N, Dv]
    return images.map((_, i) => out.slice(i * n1 * dv, (i + 1) * n1 * dv));
  });
  const vars = model.adapters.namedVariables();
  const sessions = new Map<number, Promise<OrtTrainingSession>>();
  const sessionFor = (batch: number) => {
    let s = sessions.get(batch);
    if (!s) {
      s = OrtTrainingSession.create(buildLM4LVTrainingGraph(lm, vars, model.layout(), { batch, inputNoise: opts.inputNoise }), sessionOpts);
      sessions.set(batch, s);
    }
    return s;
  };
  const gradients = async (pairs: LM4LVPair[]) => {
    const B = pairs.length;
    const [lq, hq] = [await cache.features(pairs.map((p) => p.lq)), await cache.features(pairs.map((p) => p.hq))];
    const feats = new Float32Array(B * 2 * n1 * dv); // [B, 2, 1+N, Dv]: image 0 = LQ, image 1 = HQ
    for (let b = 0; b < B; b++) {
      feats.set(lq[b], (2 * b) * n1 * dv);
      feats.set(hq[b], (2 * b + 1) * n1 * dv);
    }
    const params = Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, { data: v.dataSync() as Float32Array, shape: v.shape }]));
    const feeds: Record<string, ort.Tensor> = { features: new ort.Tensor("float32", feats, [B, 2, n1, dv]) };
    if (opts.inputNoise) {
      const noise = new Float32Array(B * n1 * dv);
      pairs.forEach((p, b) => {
        if (!p.noise || p.noise.length !== n1 * dv) throw new Error(`LM4LV input noise: pair ${b} carries no [${n1}, ${dv}] noise`);
        noise.set(p.noise, b * n1 * dv);
      });
      feeds.input_noise = new ort.Tensor("float32", noise, [B, n1, dv]);
    }
    return (await sessionFor(B)).run(params, feeds);
  };
  const release = async () => {
    await encoder.release();
    for (const s of sessions.values()) await (await s).release();
  };
  return { name: "onnxruntime", gradients, cache, release };
}
