export { LM4LV, loadModels, pairConversation, checkpointDir } from "./lm4lv.js";
export type { LM4LVModels, LoadModelsOptions, RestoreResult } from "./lm4lv.js";
export { trainLM4LV, evaluatePairs, ortLM4LVGradients, LM4LV_TRAINING_OPTIONS } from "./lm4lv-training.js";
export type { TrainLM4LVOptions, LM4LVTrainingHyperparameters, PairSource, ValMetrics, TrainEngine } from "./lm4lv-training.js";
export { FeatureCache } from "./feature-cache.js";
export type { FeatureEncoder, FeatureCacheStats } from "./feature-cache.js";
export { listInferenceItems, restoreFiles, meanScores, defaultCropBorder } from "./inference.js";
export type { InferenceItem, ItemResult, ItemScores, RestoreFilesOptions } from "./inference.js";
export { adaptersOnlyLoss, restoreAdaptersOnly, trainAdaptersOnly, ADAPTERS_ONLY_TRAINING_OPTIONS } from "./adapters-only.js";
export type { TrainAdaptersOnlyOptions } from "./adapters-only.js";
export { withOrtEngine, loadOrtLM4LV, ortAvailable, ORT_WEIGHT_FORMATS } from "./engine.js";
export type { OrtEngineOptions, OrtEngineResult, OrtWeightFormat } from "./engine.js";
export type { GenerationEngine } from "./lm4lv.js";
export {
  trainLmTokenizer,
  splitDocuments,
  encodeCorpus,
  trainableLlama,
  legacyLlamaTensor,
  parameterCount,
  tokenWindowBatches,
  embedLookup,
  tokenCrossEntropy,
  lmLoss,
  evaluatePerplexity,
  evaluatedTargets,
  unigramPerplexity,
  greedySample,
  ortLmGradients,
  parseRepeatOptions,
  LM_TEMPLATE_TEXT,
  LM_ADDED_TOKENS,
  LM_SPECIAL_TOKENS,
} from "./lm-training.js";
export type { LmTokenizerFiles, TrainableLlama, TokenBatch, PerplexityResult, RepeatOptions } from "./lm-training.js";
export { inductionTest, lm4lvCopyScores, lm4lvImageSpans } from "./induction.js";
export type { InductionResult, HeadScores } from "./induction.js";
