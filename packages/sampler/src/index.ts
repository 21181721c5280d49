export { generateVisualTokens, DEFAULT_NUM_VISUAL_TOKENS } from "./visual.js";
export type { VisualAdapters, GenerateVisualOptions } from "./visual.js";
export { generateText } from "./text.js";
export type { GenerateTextOptions, GenerateTextResult, FinishReason } from "./text.js";
export { argmax, softmax, applyTemperature, topKFilter, topPFilter, sampleIndex, selectToken } from "./processors.js";
export type { SamplingOptions } from "./processors.js";
