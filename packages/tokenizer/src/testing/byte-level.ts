/**
 * A tiny byte-level BPE `tokenizer.json` (GPT-2 / Llama-3 layout) built in code for tests:
 * the 256 byte symbols (ids 0..255 = byte values), a few merges, and two added special tokens.
 * Exposed by `./index.ts` (the `@lm4lv/tokenizer/testing` subpath).
 */

/** GPT-2's reversible byte → printable character map (bytes that print as themselves keep them). */
export function byteToUnicode(): string[] {
  const keep = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table.push(String.fromCodePoint(keep(b) ? b : next++));
  return table;
}

/** The merges, in rank order; each produces the concatenation of its two symbols. */
export const BYTE_LEVEL_MERGES: [string, string][] = [
  ["l", "l"],
  ["h", "e"],
  ["he", "ll"],
  ["hell", "o"],
  ["Ġ", "w"],
  ["o", "r"],
  ["Ġw", "or"],
  ["Ġwor", "l"],
  ["Ġworl", "d"],
  ["Ã", "©"], // "é" (bytes C3 A9)
];

export const BYTE_LEVEL_BOS = "<|begin_of_text|>";
export const BYTE_LEVEL_EOS = "<|end_of_text|>";

/** tokenizer.json object: ids 0..255 bytes, 256.. merge products, then BOS, EOS. */
export function makeByteLevelTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  byteToUnicode().forEach((symbol, b) => (vocab[symbol] = b));
  for (const [a, b] of BYTE_LEVEL_MERGES) {
    if (vocab[a] === undefined || vocab[b] === undefined) throw new Error(`merge ${a} ${b}: unknown symbol`);
    vocab[a + b] ??= Object.keys(vocab).length;
  }
  const bosId = Object.keys(vocab).length;
  const eosId = bosId + 1;
  const special = (id: number, content: string) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(bosId, BYTE_LEVEL_BOS), special(eosId, BYTE_LEVEL_EOS)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: BYTE_LEVEL_BOS, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: BYTE_LEVEL_BOS, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: BYTE_LEVEL_BOS, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [BYTE_LEVEL_BOS]: { id: BYTE_LEVEL_BOS, ids: [bosId], tokens: [BYTE_LEVEL_BOS] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: BYTE_LEVEL_MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
}
