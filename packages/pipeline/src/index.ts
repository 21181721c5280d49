export { LM4LV, loadModels, pairConversation, checkpointDir } from "./lm4lv.js";
export type { LM4LVModels, LoadModelsOptions, RestoreResult } from "./lm4lv.js";
export { trainLM4LV, evaluatePairs } from "./lm4lv-training.js";
export type { TrainLM4LVOptions, PairSource, ValMetrics } from "./lm4lv-training.js";
export { listInferenceItems, restoreFiles, meanScores, defaultCropBorder } from "./inference.js";
export type { InferenceItem, ItemResult, ItemScores, RestoreFilesOptions } from "./inference.js";
export { adaptersOnlyLoss, restoreAdaptersOnly, trainAdaptersOnly } from "./adapters-only.js";
export type { TrainAdaptersOnlyOptions } from "./adapters-only.js";
