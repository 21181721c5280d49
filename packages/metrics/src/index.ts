export { psnr, ssim, rgbToY, gaussianKernel, MetricError, DEFAULT_CROP_BORDER, PSNR_IDENTICAL, SSIM_WINDOW, SSIM_SIGMA } from "./metrics.js";
export type { MetricImage, MetricOptions, Uint8RgbImage } from "./metrics.js";
export { evaluateFiles, evaluateFolders } from "./evaluate.js";
export type { EvaluateOptions, EvaluationResult, ImageScore } from "./evaluate.js";
