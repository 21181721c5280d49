import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Tokenizer, TokenizerError } from "./tokenizer.js";
import { BYTE_LEVEL_BOS, BYTE_LEVEL_EOS, byteToUnicode, LLAMA2_TOKENIZER_DIR as LLAMA_DIR, makeByteLevelTokenizerJson } from "./testing/index.js";

interface Case {
  name: string;
  text: string;
  ids: number[];
  ids_with_bos: number[];
  pieces: string[];
  decoded: string;
  note?: string;
}
const fixture = JSON.parse(readFileSync(join(LLAMA_DIR, "cases.json"), "utf8")) as {
  cases: Case[];
  decode_only: { ids: number[]; decoded: string }[];
};
/** The three cases whose text holds literal "<s>", "</s>", "<unk>" (see fixtures/README.md). */
const SPECIAL_TEXT = new Set(["special_text_bos", "special_text_eos", "special_text_unk"]);

describe("Llama-2 tokenizer parity with SentencePiece", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await Tokenizer.fromPretrained(LLAMA_DIR);
  });

  it("reads the special tokens from tokenizer.json when there is no tokenizer_config.json", () => {
    expect(fixture.cases).toHaveLength(110);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, undefined]);
    expect(tok.vocabSize).toBe(32000);
    expect(tok.idToToken(29871)).toBe("▁");
    expect(tok.tokenToId("<0x0A>")).toBe(13);
    expect(tok.isSpecial(1) && tok.isSpecial(0) && !tok.isSpecial(13)).toBe(true);
  });

  it.each(fixture.cases.filter((c) => !SPECIAL_TEXT.has(c.name)).map((c) => [c.name, c] as const))(
    "%s: ids, ids_with_bos, pieces, decoded",
    (_name, c) => {
      const ids = tok.encode(c.text);
      expect(ids).toEqual(c.ids);
      expect(tok.encode(c.text, { addBos: true })).toEqual(c.ids_with_bos);
      expect(ids.map((id) => tok.idToToken(id))).toEqual(c.pieces);
      expect(tok.decode(c.ids)).toBe(c.decoded);
      expect(tok.decode(c.ids_with_bos, { skipSpecialTokens: true })).toBe(c.decoded);
    },
  );

  it.each(fixture.cases.filter((c) => SPECIAL_TEXT.has(c.name)).map((c) => [c.name, c] as const))(
    "%s: parseSpecial:false matches SentencePiece (special-token text is text)",
    (_name, c) => {
      expect(c.note).toBeDefined();
      expect(tok.encode(c.text, { parseSpecial: false })).toEqual(c.ids);
      expect(tok.encode(c.text, { parseSpecial: false, addBos: true })).toEqual(c.ids_with_bos);
      expect(tok.decode(c.ids)).toBe(c.decoded);
    },
  );

  it("default (Hugging Face fast-tokenizer behaviour): special-token text becomes the special id", () => {
    expect(tok.encode("<s>")).toEqual([1]);
    expect(tok.encode("</s>")).toEqual([2]);
    // The text after a matched special token is normalised on its own: "▁" + "▁token".
    expect(tok.encode("<unk> token")).toEqual([0, 29871, 5993]);
    expect(tok.encode("<s>", { addBos: true })).toEqual([1, 1]);
    // Not a round trip: "▁" + "▁token" decode to two spaces (as in Hugging Face's legacy Llama).
    expect(tok.decode([0, 29871, 5993])).toBe("<unk>  token");
  });

  it("decode_only cases (Hugging Face rules; <unk> differs from SentencePiece)", () => {
    for (const c of fixture.decode_only) {
      if (c.ids.length === 1 && c.ids[0] === 0) {
        expect(c.decoded).toBe(" \u2047 "); // SentencePiece's rendering
        expect(tok.decode(c.ids)).toBe("<unk>");
        expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe("");
      } else {
        expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decoded);
      }
    }
    // An incomplete UTF-8 run: one U+FFFD per byte token, as Hugging Face and SentencePiece do.
    expect(tok.decode([243, 162])).toBe("\uFFFD\uFFFD");
    expect(tok.decode([1, 15043, 3186, 2])).toBe("<s> Hello world</s>");
    expect(tok.decode([])).toBe("");
  });

  it("encodeBatch pads left or right with a mask", () => {
    const right = tok.encodeBatch(["Hello world", "hello"], { addBos: true, padId: 0 });
    expect(right.ids).toEqual([
      [1, 15043, 3186],
      [1, 22172, 0],
    ]);
    expect(right.attentionMask).toEqual([
      [1, 1, 1],
      [1, 1, 0],
    ]);
    // No PAD token in Llama-2: the EOS id is the default pad value.
    const left = tok.encodeBatch(["Hello world", "hello"], { addBos: true, padding: "left" });
    expect(left.ids).toEqual([
      [1, 15043, 3186],
      [2, 1, 22172],
    ]);
    expect(left.attentionMask).toEqual([
      [1, 1, 1],
      [0, 1, 1],
    ]);
    expect(tok.encodeBatch([])).toEqual({ ids: [], attentionMask: [] });
  });

  it("rejects ids outside the vocabulary", () => {
    expect(() => tok.decode([32000])).toThrow(/ids\[0\] = 32000/);
    expect(() => tok.decode([5, -1])).toThrow(/ids\[1\] = -1/);
    expect(() => tok.decode([1.5])).toThrow(TokenizerError);
  });
});

describe("loading", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "lm4lv-tokenizer-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names the missing tokenizer.json", async () => {
    await expect(Tokenizer.fromPretrained(dir)).rejects.toThrow(/tokenizer\.json not found/);
    await expect(Tokenizer.fromPretrained(join(dir, "nope"))).rejects.toThrow(/nope: no such file/);
  });

  it("names a corrupt tokenizer.json", async () => {
    const sub = mkdtempSync(join(dir, "bad-"));
    writeFileSync(join(sub, "tokenizer.json"), '{"model": {"type": "BPE", "vocab": {');
    await expect(Tokenizer.fromPretrained(sub)).rejects.toThrow(/tokenizer\.json: tokenizer\.json is not valid JSON/);
    writeFileSync(join(sub, "tokenizer.json"), '{"version": "1.0"}');
    await expect(Tokenizer.fromPretrained(sub)).rejects.toThrow(/tokenizer\.json has no "model"/);
    writeFileSync(join(sub, "tokenizer.json"), "[1, 2]");
    await expect(Tokenizer.fromPretrained(sub)).rejects.toThrow(/must be a JSON object/);
  });

  it("prefers tokenizer_config.json's special tokens (string or AddedToken object)", async () => {
    const sub = mkdtempSync(join(dir, "cfg-"));
    writeFileSync(join(sub, "tokenizer.json"), readFileSync(join(LLAMA_DIR, "tokenizer.json")));
    writeFileSync(
      join(sub, "tokenizer_config.json"),
      JSON.stringify({
        bos_token: { __type: "AddedToken", content: "<s>" },
        eos_token: "</s>",
        pad_token: "<unk>",
        unk_token: "<unk>",
      }),
    );
    const tok = await Tokenizer.fromPretrained(join(sub, "tokenizer.json"));
    expect([tok.bosId, tok.eosId, tok.padId, tok.unkId]).toEqual([1, 2, 0, 0]);
    writeFileSync(join(sub, "tokenizer_config.json"), JSON.stringify({ eos_token: "<nope>" }));
    await expect(Tokenizer.fromPretrained(sub)).rejects.toThrow(/eos_token "<nope>" is not in the vocabulary/);
  });
});

describe("byte-level BPE (GPT-2 / Llama-3 layout)", () => {
  const tok = Tokenizer.fromJSON(makeByteLevelTokenizerJson());
  const bytesOf = (s: string) => [...new TextEncoder().encode(s)];

  it("finds BOS from the post-processor and EOS by name", () => {
    expect(tok.bosId).toBe(266);
    expect(tok.eosId).toBe(267);
    expect(tok.tokenToId(BYTE_LEVEL_BOS)).toBe(266);
    expect(tok.tokenToId(BYTE_LEVEL_EOS)).toBe(267);
    expect(tok.unkId).toBeUndefined();
    expect(tok.vocabSize).toBe(268);
  });

  it("applies the merges and falls back to byte symbols", () => {
    // "hello" = merge 259, " world" = "Ġworld" = 264, "!" = byte 0x21.
    expect(tok.encode("hello world!", { addBos: true, addEos: true })).toEqual([266, 259, 264, 33, 267]);
    // "é" = merge 265; "ü" (C3 BC) has no merge: its two byte symbols.
    expect(tok.encode("éü")).toEqual([265, 0xc3, 0xbc]);
    expect(tok.idToToken(0x20)).toBe(byteToUnicode()[0x20]);
    expect(byteToUnicode()[0x20]).toBe("Ġ");
  });

  it.each([
    "hello world",
    "  leading and trailing  ",
    "line1\nline2\r\n\ttab",
    "café naïve résumé Straße",
    "你好，世界 日本語",
    "🦙 llama 👨‍👩‍👧 🇺🇸",
    "\u0000\u0001 control \u007f",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  ])("round-trips %j and every id is ≤ the merged ids", (text) => {
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    // Byte-level BPE never needs an unknown token: the ids cover the UTF-8 bytes exactly.
    const bytes = ids.flatMap((id) => (id < 256 ? [id] : bytesOf(decodeSymbol(tok.idToToken(id)!))));
    expect(bytes).toEqual(bytesOf(text));
    expect(tok.decode([266, ...ids, 267], { skipSpecialTokens: true })).toBe(text);
  });
});

/** Inverse of byteToUnicode for one merged symbol. */
function decodeSymbol(symbol: string): string {
  const inverse = new Map(byteToUnicode().map((c, b) => [c, b]));
  return new TextDecoder().decode(Uint8Array.from([...symbol].map((c) => inverse.get(c)!)));
}
