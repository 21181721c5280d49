/**
 * A byte-level BPE trainer (GPT-2 style) that writes a Hugging Face `tokenizer.json` object.
 *
 * Steps:
 * 1. Pre-tokenise every text with GPT-2's split regex (as the ByteLevel pre-tokenizer does) and
 *    count the distinct pre-tokens ("words"), each mapped byte → printable symbol (Ġ for space).
 *    Special and added tokens are cut out of the text first and never trained on.
 * 2. Start from the 256 byte symbols; count every adjacent symbol pair over the words, weighted by
 *    word count, and remember which words hold each pair.
 * 3. Repeatedly merge the most frequent pair (ties: the pair whose ids are smallest, i.e. the
 *    earliest-made symbols) into a new symbol. Only the words holding that pair are rewritten,
 *    and pair counts are updated from them; a max-heap with lazy re-checks picks the next pair.
 * 4. Stop at `vocabSize` ids (special + byte + merged + added tokens) or when the best pair occurs
 *    fewer than `minFrequency` times.
 *
 * Id layout of the result: special tokens 0..k-1, the 256 byte symbols in byte order, the merged
 * symbols in merge order, then `addedTokens`.
 */

export interface BpeTrainerOptions {
  /** Total number of ids wanted, special and added tokens included. */
  vocabSize: number;
  /** A pair must occur at least this often (weighted by word count) to be merged. Default 2. */
  minFrequency?: number;
  /** Special tokens, ids 0..k-1 in this order. Default ["<unk>", "<s>", "</s>"]; the BOS of the
   * post-processor template is "<s>" when present, else the second special token. */
  specialTokens?: string[];
  /** Whole non-special tokens (e.g. "<Img>", "</Img>"): matched as one id in input text, decoded as
   * themselves, appended after the merged symbols. Default none. */
  addedTokens?: string[];
}

export class BpeTrainerError extends Error {}

/** GPT-2's pre-tokenisation regex (the one used by Hugging Face's ByteLevel pre-tokenizer). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible byte → printable character table. */
function bytesToSymbols(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table.push(String.fromCodePoint(printable(b) ? b : next++));
  return table;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Pair key: two symbol ids < 2^20 packed in one safe integer. */
const SHIFT = 1 << 20;
const pairKey = (a: number, b: number) => a * SHIFT + b;

/** Max-heap of [count, key]; larger count first, then smaller key (earlier symbols). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.above(l, best)) best = l;
        if (r < this.counts.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Distinct pre-tokens (as byte-symbol strings) with their counts, in first-seen order. */
function countWords(texts: Iterable<string>, reserved: string[], byteSymbols: string[]): Map<string, number> {
  const encoder = new TextEncoder();
  const cut = reserved.length > 0 ? new RegExp([...reserved].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"), "g") : null;
  const raw = new Map<string, number>();
  let index = 0;
  for (const text of texts) {
    if (typeof text !== "string") throw new BpeTrainerError(`trainBpe: texts[${index}] is ${typeof text}, expected a string`);
    const pieces = cut ? text.split(cut) : [text];
    for (const piece of pieces) {
      for (const m of piece.matchAll(GPT2_SPLIT)) raw.set(m[0], (raw.get(m[0]) ?? 0) + 1);
    }
    index++;
  }
  const words = new Map<string, number>();
  for (const [word, count] of raw) {
    let symbols = "";
    for (const b of encoder.encode(word)) symbols += byteSymbols[b];
    words.set(symbols, (words.get(symbols) ?? 0) + count);
  }
  return words;
}

/**
 * Train a byte-level BPE tokenizer on `texts` and return a Hugging Face `tokenizer.json` object
 * (ByteLevel pre-tokenizer and decoder, BPE model, TemplateProcessing "<s> $A" post-processor).
 * The same texts and options always give the same result.
 */
export function trainBpe(texts: Iterable<string>, options: BpeTrainerOptions): Record<string, unknown> {
  const specialTokens = options.specialTokens ?? ["<unk>", "<s>", "</s>"];
  const addedTokens = options.addedTokens ?? [];
  const minFrequency = options.minFrequency ?? 2;
  const { vocabSize } = options;
  if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new BpeTrainerError(`trainBpe: vocabSize must be a positive integer, got ${vocabSize}`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new BpeTrainerError(`trainBpe: minFrequency must be an integer >= 1, got ${minFrequency}`);
  const reserved = [...specialTokens, ...addedTokens];
  if (reserved.some((t) => typeof t !== "string" || t.length === 0)) throw new BpeTrainerError("trainBpe: special and added tokens must be non-empty strings");
  if (new Set(reserved).size !== reserved.length) throw new BpeTrainerError(`trainBpe: duplicate special/added token in ${JSON.stringify(reserved)}`);
  const fixed = reserved.length + 256;
  if (vocabSize < fixed) {
    throw new BpeTrainerError(`trainBpe: vocabSize ${vocabSize} is below the ${fixed} ids needed for the special, added and 256 byte tokens`);
  }
  const maxSymbols = Math.min(vocabSize - reserved.length, SHIFT);

  // 1. Words as arrays of symbol ids (0..255 = bytes), with counts.
  const byteSymbols = bytesToSymbols();
  const symbolOfByte = new Map(byteSymbols.map((s, b) => [s, b]));
  const wordCounts = countWords(texts, reserved, byteSymbols);
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    const ids: number[] = [];
    for (const ch of word) ids.push(symbolOfByte.get(ch)!);
    words.push(ids);
    counts.push(count);
  }

  // 2. Pair counts and, per pair, the words that (may) hold it.
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1) => {
    const ids = words[w];
    for (let i = 0; i + 1 < ids.length; i++) {
      const key = pairKey(ids[i], ids[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * counts[w]);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1);
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  // 3. Merge loop.
  const symbols = [...byteSymbols];
  const symbolIds = new Map(symbols.map((s, id) => [s, id]));
  const merges: string[] = [];
  while (symbols.length < maxSymbols && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCounts.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // stale entry: re-queue with the true count
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / SHIFT);
    const b = key % SHIFT;
    // Two merges can spell the same string ("ab"+"c", "a"+"bc"): they share one id, as in HF.
    const text = symbols[a] + symbols[b];
    let merged = symbolIds.get(text);
    if (merged === undefined) {
      merged = symbols.length;
      symbols.push(text);
      symbolIds.set(text, merged);
    }
    merges.push(`${symbols[a]} ${symbols[b]}`);

    const touched = [...(pairWords.get(key) ?? [])].sort((x, y) => x - y);
    pairWords.delete(key);
    for (const w of touched) {
      const ids = words[w];
      let holds = false;
      for (let i = 0; i + 1 < ids.length && !holds; i++) holds = ids[i] === a && ids[i + 1] === b;
      if (!holds) continue;
      addPairs(w, -1);
      const out: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(ids[i]);
      }
      words[w] = out;
      addPairs(w, 1);
    }
    pairCounts.delete(key);
    // Only pairs that contain the new symbol can have grown; queue them with their counts.
    const fresh = new Set<number>();
    for (const w of touched) {
      const ids = words[w];
      for (let i = 0; i + 1 < ids.length; i++) {
        if (ids[i] === merged || ids[i + 1] === merged) fresh.add(pairKey(ids[i], ids[i + 1]));
      }
    }
    for (const k of [...fresh].sort((x, y) => x - y)) heap.push(pairCounts.get(k)!, k);
  }

  return tokenizerJson(specialTokens, addedTokens, symbols, merges);
}

/** Assemble the `tokenizer.json` object. */
function tokenizerJson(specialTokens: string[], addedTokens: string[], symbols: string[], merges: string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  specialTokens.forEach((t, id) => (vocab[t] = id));
  symbols.forEach((s, i) => (vocab[s] = specialTokens.length + i));
  const firstAdded = specialTokens.length + symbols.length;
  const entry = (id: number, content: string, special: boolean) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special, special,
  });
  const bos = specialTokens.includes("<s>") ? "<s>" : specialTokens[1] ?? specialTokens[0];
  const bosId = bos === undefined ? undefined : vocab[bos];
  const unk = specialTokens.includes("<unk>") ? "<unk>" : null;
  const sequence = (id: "A" | "B", typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const special = (typeId: number) => ({ SpecialToken: { id: bos, type_id: typeId } });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      ...specialTokens.map((t, id) => entry(id, t, true)),
      ...addedTokens.map((t, i) => entry(firstAdded + i, t, false)),
    ],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor:
      bosId === undefined
        ? null
        : {
            type: "TemplateProcessing",
            single: [special(0), sequence("A", 0)],
            pair: [special(0), sequence("A", 0), special(1), sequence("B", 1)],
            special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
          },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
