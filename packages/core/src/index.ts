export { initBackend, currentBackend, nativeBindingAvailable, BACKEND_ORDER } from "./backend.js";
export type { BackendName } from "./backend.js";
export { registerFastWasmBatchMatMul, unregisterFastWasmBatchMatMul } from "./wasm-matmul.js";
export {
  SafetensorsFile,
  SafetensorsCheckpoint,
  SafetensorsError,
  writeSafetensors,
  readSafetensors,
  f16ToF32,
  bf16ToF32,
  f32ToF16,
  f32ToBF16,
} from "./safetensors.js";
export type { SafetensorsDtype, TensorEntry, LoadedTensor, TensorToWrite } from "./safetensors.js";
export {
  ConfigError,
  readJsonFile,
  readConfig,
  validateConfig,
  formatIssues,
  fieldPath,
  positiveInt,
  nonNegativeInt,
  positiveNumber,
  nonNegativeNumber,
  oneOf,
} from "./config.js";
export type { IssueSource, FormatOptions, ValidateOptions } from "./config.js";
export { writeFileAtomic } from "./fsutil.js";
export { WeightLoadError } from "./errors.js";
export {
  readImage,
  decodeImage,
  writeImage,
  encodeImage,
  resizeImage,
  toUint8,
  fromUint8,
  hwcToChw,
  chwToHwc,
  hconcat,
  vconcat,
  splitTiles,
  joinTiles,
  isImagePath,
  listImages,
  IMAGE_EXTENSIONS,
  ImageError,
} from "./image.js";
export type { RgbImage, ImageFormat } from "./image.js";
export type { VisionModel, SyncVisionModel, CausalLM, SyncCausalLM, CausalLMInput, CausalLMOutput, KVCache } from "./interfaces.js";
export { isSyncVisionModel, isSyncCausalLM } from "./interfaces.js";
export { Mulberry32 } from "./rng.js";
export { ParameterStore, transpose2d } from "./parameters.js";
export type { ParameterInit } from "./parameters.js";
export { UsageError, numeric, defaultOf, checkPositionals, parseCommandLine, usageText, isMain, runScript } from "./command-line.js";
export type { CommandLineSpec, CommandLine, UsageTextOptions } from "./command-line.js";
