import { describe, expect, it } from "vitest";
import { BpeTrainerError, trainBpe } from "./bpe-trainer.js";
import { Tokenizer } from "./tokenizer.js";
import { byteToUnicode } from "./testing/index.js";
import { Mulberry32 } from "@lm4lv/core";

/** A small English corpus written for this test. */
const CORPUS = [
  "The lighthouse keeper climbed the stairs every evening and lit the lamp before the ships came in.",
  "Ships that passed the headland at night looked for the light, and the keeper looked for the ships.",
  "In winter the wind blew hard from the north; the keeper wrote the weather in a small notebook.",
  "Lower, lowest, newer, newest: the keeper's daughter learned her comparatives while the kettle boiled.",
  "She counted 12 boats on Monday, 7 on Tuesday and 19 on Wednesday, and wrote the numbers down too.",
  "When the lamp was lit, the whole bay shone, and the fishermen said the lighthouse kept them safe.",
  "The keeper's notebook was full of tides, winds, boats, storms and the names of the ships he saw.",
  "Years later the daughter kept the light herself, climbing the same stairs every single evening.",
];

/** Template lines of the lm4lv conversation format, mixed in so their pieces get merged. */
const TEMPLATE = "### Human: <Img></Img> restore this\n### Assistant: <Img></Img>\n###";

const corpus = (): string[] => [...CORPUS, ...CORPUS.map((s) => s.toUpperCase()), ...Array(40).fill(TEMPLATE)];

function mulberry32(seed: number): () => number {
  const rng = new Mulberry32(seed);
  return () => rng.next();
}

/**
 * Reference: the textbook BPE loop, recounting every pair from scratch at each step
 * (no incremental bookkeeping), with the same tie-break (smallest ids) and id assignment.
 */
function naiveMerges(texts: string[], numSymbols: number, minFrequency: number): string[] {
  const table = byteToUnicode();
  const split = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const words: number[][] = [];
  for (const t of texts) for (const m of t.matchAll(split)) words.push([...new TextEncoder().encode(m[0])]);
  const symbols = table.slice();
  const merges: string[] = [];
  while (symbols.length < numSymbols) {
    const pairCount = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) pairCount.set(`${w[i]},${w[i + 1]}`, (pairCount.get(`${w[i]},${w[i + 1]}`) ?? 0) + 1);
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of pairCount) {
      const [a, b] = k.split(",").map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < minFrequency) break;
    const [a, b] = best;
    const text = symbols[a] + symbols[b];
    let id = symbols.indexOf(text);
    if (id < 0) id = symbols.push(text) - 1;
    merges.push(`${symbols[a]} ${symbols[b]}`);
    for (let w = 0; w < words.length; w++) {
      const out: number[] = [];
      for (let i = 0; i < words[w].length; i++) {
        if (i + 1 < words[w].length && words[w][i] === a && words[w][i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(words[w][i]);
      }
      words[w] = out;
    }
  }
  return merges;
}

describe("trainBpe", () => {
  const json = trainBpe(corpus(), { vocabSize: 600, minFrequency: 2, addedTokens: ["<Img>", "</Img>"] });
  const tok = Tokenizer.fromJSON(json);
  const model = json.model as { vocab: Record<string, number>; merges: string[] };

  it("gives the same merges as a from-scratch reference BPE", () => {
    const texts = corpus();
    const plain = trainBpe(texts.map((t) => t.replaceAll("<Img>", "").replaceAll("</Img>", "")), { vocabSize: 3 + 256 + 150 });
    const expected = naiveMerges(texts.map((t) => t.replaceAll("<Img>", "").replaceAll("</Img>", "")), 256 + 150, 2);
    expect((plain.model as { merges: string[] }).merges).toEqual(expected);
  });

  it("loads with Tokenizer.fromJSON with the special tokens resolved", () => {
    expect(tok.unkId).toBe(0);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.idToToken(3)).toBe("Ā"); // byte 0x00 (GPT-2 byte symbol), right after 3 special tokens
    expect(tok.idToToken(3 + 0x21)).toBe("!");
    expect(tok.vocabSize).toBeLessThanOrEqual(600);
    expect(tok.vocabSize).toBe(Object.keys(model.vocab).length + 2);
    expect(tok.encode("hello", { addBos: true })[0]).toBe(1);
    expect(tok.encode("<s>x</s>")).toEqual([1, tok.tokenToId("x"), 2]);
  });

  it("round-trips arbitrary unicode exactly", () => {
    const fixed = [
      "Héllo wörld — naïve café",
      "你好，世界 🌍🚀 family: 👨‍👩‍👧",
      "tabs\tand  double  spaces \n\n trailing   ",
      "e\u0301 combining, \u200b zero width, \uFEFF BOM",
      "  leading spaces, 'quotes' and \"more\" — it's 12:30!",
      "",
    ];
    const rand = mulberry32(7);
    const random: string[] = [];
    for (let n = 0; n < 30; n++) {
      let s = "";
      const len = 1 + Math.floor(rand() * 40);
      for (let i = 0; i < len; i++) {
        const r = rand();
        const cp = r < 0.5 ? 0x20 + Math.floor(rand() * 95) : r < 0.7 ? 0x0a : r < 0.9 ? 0xa0 + Math.floor(rand() * 0x2000) : 0x1f300 + Math.floor(rand() * 0x300);
        s += String.fromCodePoint(cp);
      }
      random.push(s);
    }
    for (const text of [...fixed, ...random]) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it("needs far fewer tokens than bytes on text like the training text", () => {
    const text = "The keeper climbed the stairs and lit the lamp; the ships saw the light in the bay.";
    const ids = tok.encode(text);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(text).length / 2.5);
    expect(tok.decode(ids)).toBe(text);
  });

  it("keeps the added tokens whole and learns the conversation template", () => {
    const img = tok.encode("<Img>");
    expect(img).toHaveLength(1);
    expect(tok.isSpecial(img[0])).toBe(false);
    expect(tok.encode("</Img>")).toHaveLength(1);
    expect(tok.encode("###")).toHaveLength(1);
    expect(tok.encode(" Human")).toHaveLength(1);
    expect(tok.encode(" Assistant")).toHaveLength(1);
    const prompt = "### Human: <Img></Img> restore this\n### Assistant: <Img>";
    expect(tok.decode(tok.encode(prompt))).toBe(prompt);
    expect(tok.decode(tok.encode(prompt), { skipSpecialTokens: true })).toBe(prompt);
  });

  it("is deterministic", () => {
    const again = trainBpe(corpus(), { vocabSize: 600, minFrequency: 2, addedTokens: ["<Img>", "</Img>"] });
    expect(JSON.stringify(again)).toBe(JSON.stringify(json));
  });

  it("stops at minFrequency", () => {
    const rare = trainBpe(["abcd abcd xyz"], { vocabSize: 1000, minFrequency: 2 });
    // ties go to the smallest ids: (a,b) and (c,d) are byte pairs, made before (ab,cd)
    expect((rare.model as { merges: string[] }).merges).toEqual(["a b", "c d", "ab cd"]);
  });

  it("rejects bad options by name", () => {
    expect(() => trainBpe(["x"], { vocabSize: 100 })).toThrow(BpeTrainerError);
    expect(() => trainBpe(["x"], { vocabSize: 100 })).toThrow(/vocabSize 100/);
    expect(() => trainBpe(["x"], { vocabSize: 300, minFrequency: 0 })).toThrow(/minFrequency/);
    expect(() => trainBpe(["x"], { vocabSize: 300, specialTokens: ["<s>", "<s>"] })).toThrow(/duplicate/);
  });
});
