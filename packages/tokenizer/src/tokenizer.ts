/**
 * A thin wrapper over the pure-JS `tokenizer.json` runtime of `@huggingface/tokenizers`.
 *
 * What this file adds on top of the runtime:
 * - loading from a model folder with file-named errors;
 * - BOS/EOS/PAD/UNK resolution: `tokenizer_config.json` (then `special_tokens_map.json`) first,
 *   else `tokenizer.json` (TemplateProcessing post-processor, model `unk_token`, well-known names);
 * - BOS handling done here (`addBos`), not by the post-processor, so it behaves the same for
 *   Llama-2 (`<s>`), Llama-3 (`<|begin_of_text|>`) and GPT-2-style files;
 * - `parseSpecial`: whether special-token text such as "<s>" in the input becomes the special id
 *   (Hugging Face fast-tokenizer behaviour, the default) or is tokenised as plain text
 *   (raw SentencePiece behaviour);
 * - decoding with Hugging Face's rules: no "clean up tokenization spaces" unless the config asks
 *   for it, and an invalid UTF-8 run of byte-fallback tokens gives one U+FFFD per byte.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as RuntimeTokenizer } from "@huggingface/tokenizers";

export class TokenizerError extends Error {}

export interface EncodeOptions {
  /** Prepend the BOS id (default false). */
  addBos?: boolean;
  /** Append the EOS id (default false). */
  addEos?: boolean;
  /**
   * true (default): special-token text in the input ("<s>", "</s>", "<unk>", ...) is matched as the
   * special token, as Hugging Face's fast tokenizers do. false: it is ordinary text, as raw
   * SentencePiece does (Llama-2: "<s>" → ["▁<", "s", ">"]).
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS/EOS/UNK/PAD and other added special tokens) before decoding. */
  skipSpecialTokens?: boolean;
}

export interface EncodeBatchOptions extends EncodeOptions {
  /** Where the padding goes (default "right"; "left" for batched generation). */
  padding?: "left" | "right";
  /** Id written at padded positions; default: the tokenizer's PAD id, else its EOS id. */
  padId?: number;
}

export interface EncodedBatch {
  /** [batch][maxLen] token ids, padded. */
  ids: number[][];
  /** [batch][maxLen], 1 = real token, 0 = padding. */
  attentionMask: number[][];
}

/** The subset of `tokenizer.json` read here (the runtime reads the rest). */
interface TokenizerJson {
  added_tokens?: { id: number; content: string; special?: boolean }[];
  model?: { type?: string; unk_token?: string | null; vocab?: unknown };
  post_processor?: unknown;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

const SPECIAL_KEYS = ["bos_token", "eos_token", "pad_token", "unk_token"] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];

/** Well-known names, used only when neither config file nor the post-processor names a token. */
const KNOWN_NAMES: Record<SpecialKey, string[]> = {
  bos_token: ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"],
  eos_token: ["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"],
  pad_token: ["<pad>", "<|pad|>", "[PAD]"],
  unk_token: ["<unk>", "[UNK]"],
};

function readJson(path: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TokenizerError(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: ${what} is not valid JSON (${(e as Error).message})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new TokenizerError(`${path}: ${what} must be a JSON object`);
  }
  return json as Json;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object {content, ...}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Json).content === "string") {
    return (value as Json).content as string;
  }
  return undefined;
}

/** [first special id before $A, first special id after $A] of a TemplateProcessing `single`. */
function templateSpecials(postProcessor: unknown): { before?: string; after?: string } {
  const found: { before?: string; after?: string } = {};
  const visit = (pp: unknown): void => {
    if (!pp || typeof pp !== "object") return;
    const p = pp as Json;
    if (p.type === "Sequence" && Array.isArray(p.processors)) p.processors.forEach(visit);
    if (p.type !== "TemplateProcessing" || !Array.isArray(p.single)) return;
    let seenSequence = false;
    for (const item of p.single as Json[]) {
      if (item.Sequence) seenSequence = true;
      const special = item.SpecialToken as Json | undefined;
      if (special && typeof special.id === "string") {
        if (!seenSequence) found.before ??= special.id;
        else found.after ??= special.id;
      }
    }
  };
  visit(postProcessor);
  return found;
}

export class Tokenizer {
  /** Special tokens by content, as resolved at load time. */
  readonly specialTokens: Readonly<Record<"bos" | "eos" | "pad" | "unk", string | undefined>>;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly padId: number | undefined;
  readonly unkId: number | undefined;
  /** Number of ids (model vocabulary + added tokens), i.e. max id + 1. */
  readonly vocabSize: number;

  private readonly runtime: RuntimeTokenizer;
  private plainTextRuntime: RuntimeTokenizer | undefined;
  private readonly specialIds: Set<number>;

  private constructor(
    private readonly json: TokenizerJson,
    private readonly config: Json,
    private readonly source: string,
  ) {
    try {
      this.runtime = new RuntimeTokenizer(json, {
        ...config,
        // Hugging Face Llama/GPT configs set this false; the runtime defaults it to true.
        clean_up_tokenization_spaces: config.clean_up_tokenization_spaces === true,
      });
    } catch (e) {
      throw new TokenizerError(`${source}: unsupported or corrupt tokenizer.json (${(e as Error).message})`);
    }
    patchByteFallback(this.runtime);

    const vocab = this.runtime.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const template = templateSpecials(json.post_processor);
    const fromJson: Record<SpecialKey, string | undefined> = {
      bos_token: template.before,
      eos_token: template.after,
      pad_token: undefined,
      unk_token: typeof json.model?.unk_token === "string" ? json.model.unk_token : undefined,
    };
    const resolved = {} as Record<SpecialKey, string | undefined>;
    for (const key of SPECIAL_KEYS) {
      const fromConfig = tokenContent(config[key]);
      let content = fromConfig ?? fromJson[key];
      if (content === undefined && !(key in config)) {
        content = KNOWN_NAMES[key].find((name) => this.runtime.token_to_id(name) !== undefined);
      }
      if (content !== undefined && this.runtime.token_to_id(content) === undefined) {
        throw new TokenizerError(`${source}: ${key} "${content}" is not in the vocabulary`);
      }
      resolved[key] = content;
    }
    this.specialTokens = {
      bos: resolved.bos_token,
      eos: resolved.eos_token,
      pad: resolved.pad_token,
      unk: resolved.unk_token,
    };
    const idOf = (t: string | undefined) => (t === undefined ? undefined : this.runtime.token_to_id(t));
    this.bosId = idOf(resolved.bos_token);
    this.eosId = idOf(resolved.eos_token);
    this.padId = idOf(resolved.pad_token);
    this.unkId = idOf(resolved.unk_token);

    this.specialIds = new Set(
      (json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id),
    );
    for (const id of [this.bosId, this.eosId, this.padId, this.unkId]) if (id !== undefined) this.specialIds.add(id);
  }

  /**
   * Load `<dir>/tokenizer.json` (+ optional `tokenizer_config.json`, `special_tokens_map.json`).
   * `dirOrFile` may also be the path of a tokenizer.json file.
   */
  static async fromPretrained(dirOrFile: string): Promise<Tokenizer> {
    if (!existsSync(dirOrFile)) throw new TokenizerError(`${dirOrFile}: no such file or folder`);
    const isDir = statSync(dirOrFile).isDirectory();
    const dir = isDir ? dirOrFile : join(dirOrFile, "..");
    const jsonPath = isDir ? join(dirOrFile, "tokenizer.json") : dirOrFile;
    if (!existsSync(jsonPath)) {
      throw new TokenizerError(`${jsonPath}: tokenizer.json not found (only the Hugging Face tokenizer.json format is supported)`);
    }
    const json = readJson(jsonPath, "tokenizer.json") as TokenizerJson;
    if (!json.model || typeof json.model !== "object") {
      throw new TokenizerError(`${jsonPath}: tokenizer.json has no "model" object`);
    }
    const config: Json = {};
    const mapPath = join(dir, "special_tokens_map.json");
    if (existsSync(mapPath)) Object.assign(config, readJson(mapPath, "special_tokens_map.json"));
    const configPath = join(dir, "tokenizer_config.json");
    if (existsSync(configPath)) Object.assign(config, readJson(configPath, "tokenizer_config.json"));
    return Tokenizer.fromJSON(json, config, jsonPath);
  }

  /** Build from already-parsed `tokenizer.json` (+ `tokenizer_config.json`) objects. */
  static fromJSON(tokenizerJson: object, tokenizerConfig: object = {}, source = "tokenizer.json"): Tokenizer {
    return new Tokenizer(tokenizerJson as TokenizerJson, tokenizerConfig as Json, source);
  }

  /** Text → ids. No BOS unless `addBos`. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TokenizerError(`encode: expected a string, got ${typeof text}`);
    const runtime = options.parseSpecial === false ? this.plainText() : this.runtime;
    const ids = text.length === 0 ? [] : runtime.encode(text, { add_special_tokens: false }).ids;
    if (options.addBos) ids.unshift(this.requireId("bos"));
    if (options.addEos) ids.push(this.requireId("eos"));
    return ids;
  }

  /** Ids → text. Throws on an id outside [0, vocabSize). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.runtime.id_to_token(id) === undefined) {
        throw new TokenizerError(`decode: ids[${i}] = ${id} is not a token id (vocabSize ${this.vocabSize})`);
      }
    }
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return "";
    return this.runtime.decode(kept, { skip_special_tokens: false });
  }

  /** Encode several texts and pad them to the longest. */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): EncodedBatch {
    const padding = options.padding ?? "right";
    if (padding !== "left" && padding !== "right") {
      throw new TokenizerError(`encodeBatch: padding must be "left" or "right", got ${JSON.stringify(padding)}`);
    }
    const padId = options.padId ?? this.padId ?? this.eosId;
    if (padId === undefined) throw new TokenizerError(`${this.source}: no PAD or EOS token; pass encodeBatch({ padId })`);
    const encoded = texts.map((t) => this.encode(t, options));
    const maxLen = Math.max(0, ...encoded.map((e) => e.length));
    const ids: number[][] = [];
    const attentionMask: number[][] = [];
    for (const e of encoded) {
      const pad = new Array<number>(maxLen - e.length).fill(padId);
      const zeros = new Array<number>(maxLen - e.length).fill(0);
      const ones = new Array<number>(e.length).fill(1);
      ids.push(padding === "left" ? [...pad, ...e] : [...e, ...pad]);
      attentionMask.push(padding === "left" ? [...zeros, ...ones] : [...ones, ...zeros]);
    }
    return { ids, attentionMask };
  }

  /** Token string of an id (e.g. "▁Hello", "<0x0A>"), or undefined. */
  idToToken(id: number): string | undefined {
    return this.runtime.id_to_token(id);
  }

  /** Id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.runtime.token_to_id(token);
  }

  /** Whether `id` is a special token (skipped by `decode(..., { skipSpecialTokens: true })`). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  private requireId(which: "bos" | "eos"): number {
    const id = which === "bos" ? this.bosId : this.eosId;
    if (id === undefined) {
      throw new TokenizerError(`${this.source}: no ${which.toUpperCase()} token (set ${which}_token in tokenizer_config.json)`);
    }
    return id;
  }

  /** A second runtime whose special added tokens are not matched in the input text. */
  private plainText(): RuntimeTokenizer {
    if (!this.plainTextRuntime) {
      const json = { ...this.json, added_tokens: (this.json.added_tokens ?? []).filter((t) => !t.special) };
      this.plainTextRuntime = new RuntimeTokenizer(json, { ...this.config, clean_up_tokenization_spaces: false });
    }
    return this.plainTextRuntime;
  }
}

/**
 * @huggingface/tokenizers 0.2.0 decodes a run of byte-fallback tokens with a lenient TextDecoder,
 * so an invalid run such as <0xF0><0x9F> gives one U+FFFD. Hugging Face's Rust decoder (and
 * SentencePiece) give one U+FFFD per byte token. Swap in a decoder with that rule.
 */
function patchByteFallback(runtime: RuntimeTokenizer): void {
  const strict = new TextDecoder("utf-8", { fatal: true });
  const perByte = {
    decode(bytes: Uint8Array): string {
      try {
        return strict.decode(bytes);
      } catch {
        return "\uFFFD".repeat(bytes.length);
      }
    },
  };
  const visit = (decoder: unknown): void => {
    // The runtime's decoders are callable objects (functions), not plain objects.
    if (!decoder || (typeof decoder !== "object" && typeof decoder !== "function")) return;
    const d = decoder as { decoders?: unknown[]; text_decoder?: unknown; config?: { type?: string } };
    if (Array.isArray(d.decoders)) d.decoders.forEach(visit);
    if (d.config?.type === "ByteFallback" && d.text_decoder) d.text_decoder = perByte;
  };
  visit(runtime.decoder);
}
