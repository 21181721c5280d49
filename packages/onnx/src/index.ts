export { OnnxGraph, PROTOBUF_LIMIT } from "./graph.js";
export type { ElemType, Dim, AttrValue, SaveOptions, SavedModel } from "./graph.js";
export { buildViTEncoder, buildViTDecoder } from "./vit-export.js";
export { buildLlamaStep, buildEmbed, buildVisualStep } from "./llama-export.js";
export type { AdapterWeights } from "./llama-export.js";
export { OrtSession, sessionOptions, createAsyncSession } from "./session.js";
/** onnxruntime-node's tensor class, for feeding `OrtSession.run` directly. */
export { Tensor as OrtTensor } from "onnxruntime-node";
export type { OrtSessionOptions } from "./session.js";
export { OrtVisionModel, OrtCausalLM, OrtKVCache, OrtVisualStep, generateVisualTokensOrt, toOrt, fromOrt } from "./runtime.js";
export type { OrtVisionInfo, OrtLMInfo, OrtVisualStepInfo, GenerateVisualOrtOptions } from "./runtime.js";
export { exportOnnx, ensureExported, readManifest, loadOrtModels, sourceHash, sourceFromDir, MANIFEST_FILE, MANIFEST_FORMAT, EXPORTER_VERSION } from "./export.js";
export type { ExportSource, ExportOptions, OnnxManifest, EnsureResult, OrtModels } from "./export.js";
export type { FloatType, GraphNode, OnnxGraphOptions } from "./graph.js";
export { addGradients, reduceTo, DIFFERENTIABLE_OPS } from "./autodiff.js";
export type { GradientOptions } from "./autodiff.js";
export { broadcastShapes } from "./shapes.js";
export { finishTrainingGraph, OrtTrainingSession } from "./training.js";
export type { ParamValue, TrainingStepResult } from "./training.js";
