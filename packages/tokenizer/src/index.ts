export { Tokenizer, TokenizerError } from "./tokenizer.js";
export type { EncodeOptions, DecodeOptions, EncodeBatchOptions, EncodedBatch } from "./tokenizer.js";
export {
  buildSequence,
  buildGenerationPrompt,
  SequenceError,
  IGNORE_INDEX,
  DEFAULT_NUM_VISUAL_TOKENS,
  DEFAULT_NUM_TASK_TOKENS,
  IMAGE_PLACEHOLDER,
  TASK_PLACEHOLDER,
  DEFAULT_HUMAN_VALUE,
  DEFAULT_GPT_VALUE,
  DEFAULT_RESPONSE_PREFIX,
} from "./sequence.js";
export type {
  Role,
  ConversationTurn,
  Conversation,
  SequenceOptions,
  Span,
  VisionTarget,
  TextPiece,
  BuiltSequence,
  GenerationPrompt,
} from "./sequence.js";
export { trainBpe, BpeTrainerError } from "./bpe-trainer.js";
export type { BpeTrainerOptions } from "./bpe-trainer.js";
