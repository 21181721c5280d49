export { Rng, TrainRng, deriveSeed, epochOrder, normalPair } from "./rng.js";
export type { RngState } from "./rng.js";
export {
  gaussianNoise,
  gaussianBlur,
  rainStreaks,
  saltPepper,
  patchMask,
  jpegCompress,
  rotate90,
  flipHorizontal,
  flipVertical,
  identity,
  GAUSSIAN_NOISE_DEFAULTS,
  GAUSSIAN_BLUR_DEFAULTS,
  RAIN_DEFAULTS,
  SALT_PEPPER_DEFAULTS,
  MASK_DEFAULTS,
  JPEG_DEFAULTS,
} from "./degradations.js";
export type {
  GaussianNoiseParams,
  GaussianBlurParams,
  RainParams,
  SaltPepperParams,
  MaskParams,
  JpegParams,
} from "./degradations.js";
export { TASKS, TASK_NAMES, isTaskName, getTask, degrade, makePair, parseTaskParams } from "./tasks.js";
export type { TaskName, TaskKind, TaskSpec, TaskParams } from "./tasks.js";
/** The image files of a folder, sorted by name: core's (metrics lists folders with it too). */
export { listImages } from "@lm4lv/core";
export {
  JsonDataset,
  FolderPairDataset,
  writeDegradedDataset,
  readDataItems,
  DATA_ITEM_FIELDS,
  DATA_ITEM_SCHEMA,
  DatasetError,
  PAIR_CONVERSATION,
  PAIR_TASK_TYPE,
} from "./dataset.js";
export type {
  PairSample,
  DataItem,
  JsonDatasetOptions,
  FolderPairOptions,
  WriteDatasetOptions,
} from "./dataset.js";
