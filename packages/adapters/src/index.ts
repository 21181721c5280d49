export { LM4LVAdapters, LM4LVAdapters as Adapters, ADAPTER_PARAM_NAMES, DEFAULT_TASK_TOKENS, adapterParamShapes } from "./adapters.js";
export type { AdaptersConfig, AdapterParamName } from "./adapters.js";
export { assembleInputsEmbeds, assembleInputsEmbedsSync, assembleBatchInputsEmbeds } from "./assemble.js";
export type { SequenceSpan, SequenceLayout, ImageFeatures } from "./assemble.js";
export { lm4lvLoss, lm4lvForwardLoss, IGNORE_INDEX } from "./loss.js";
export type { VisionTarget, LossSample, LossInputs, LossValues, TrainingSample } from "./loss.js";
export {
  saveAdapters,
  ADAPTER_DTYPES,
  loadAdapters,
  readCheckpointInfo,
  loadLora,
  CheckpointError,
  ADAPTERS_FILE,
  RUN_FILE,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
} from "./checkpoint.js";
export type { RunInfo, CheckpointInfo, LoadAdaptersOptions, SaveAdaptersOptions, AdapterDtype } from "./checkpoint.js";
export { resolveModelReferences, embeddedModelDirs, ModelReferenceError } from "./model-refs.js";
export type { ModelOverrides, ModelReferenceField, ResolveModelsOptions, ResolvedModels } from "./model-refs.js";
export { LlamaLora, LORA_TARGETS, loraParamShapes } from "./lora.js";
export type { LoraConfig, LoraTarget, LlamaLike } from "./lora.js";
