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
export {
  JsonDataset,
  FolderPairDataset,
  writeDegradedDataset,
  listImages,
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
