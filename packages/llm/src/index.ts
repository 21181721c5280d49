export { LlamaForCausalLM, MASK_VALUE, rmsNorm } from "./model.js";
export type { LlamaInput, LlamaOutput, SaveOptions, GreedyOptions, GreedyResult, WeightDeltas } from "./model.js";
export { LlamaKVCache } from "./cache.js";
export type { LayerKV } from "./cache.js";
export { parseLlamaConfig, readLlamaConfig, llamaPreset, LLAMA_PRESETS, LLAMA_CONFIG_SCHEMA } from "./config.js";
export type { LlamaConfig, LlamaPresetName, RopeScaling, Llama3RopeScaling, LinearRopeScaling } from "./config.js";
export { computeInvFreq, ropeCosSin, applyRotary, rotateHalf } from "./rope.js";
export { llamaWeightTable, checkCheckpoint, WeightLoadError, IGNORED_KEYS } from "./weights.js";
export type { WeightSpec, WeightRole } from "./weights.js";
