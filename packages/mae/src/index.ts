export { ViTMAE } from "./model.js";
export type { ViTMAEForwardOptions, ViTMAEForwardOutput, ViTMAESaveOptions } from "./model.js";
export { parseViTMAEConfig, readViTMAEConfig, vitMAEPreset, VIT_MAE_PRESETS, VIT_MAE_SCHEMA, SUPPORTED_ACTIVATIONS } from "./config.js";
export type { ViTMAEConfig, ViTMAEPresetName } from "./config.js";
export {
  patchify,
  unpatchify,
  randomMasking,
  lenKeep,
  argsortRows,
  sincosPositionEmbedding,
  normalizeImageNet,
  denormalizeImageNet,
  imagesToTensor,
  tensorToImages,
  preprocessImages,
  preprocessFiles,
  postprocess,
  gelu,
  IMAGENET_MEAN,
  IMAGENET_STD,
} from "./ops.js";
export type { MaskingResult } from "./ops.js";
export { maePretrainingLoss, decoderFinetuneLoss, NORM_PIX_EPS } from "./losses.js";
export type { DecoderLossOptions } from "./losses.js";
export { expectedWeights, WeightLoadError } from "./weights.js";
export type { WeightSpec } from "./weights.js";
export { ImageSet, maeBatches } from "./image-set.js";
export type { MaeBatch, MaeBatchOptions } from "./image-set.js";
export { evaluateReconstruction, reconstructImages } from "./evaluation.js";
export type { ReconstructionScore } from "./evaluation.js";
export { trainMae, maePretrainTask, maeDecoderFinetuneTask, maeAutoencodeTask, MAE_TRAINING_OPTIONS, MAE_STAGES } from "./training.js";
export type { MaeTrainOptions, MaeTrainSettings, MaeTrainResult, MaeStage, MaeTask, MaeEngineRun, MaeGradients, MaeGradientEngine } from "./training.js";
