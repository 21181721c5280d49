import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Tokenizer } from "./tokenizer.js";
import { LLAMA2_TOKENIZER_DIR as LLAMA_DIR, makeByteLevelTokenizerJson } from "./testing/index.js";
import {
  buildGenerationPrompt,
  buildSequence,
  DEFAULT_GPT_VALUE,
  DEFAULT_HUMAN_VALUE,
  IGNORE_INDEX as X,
  SequenceError,
  type Conversation,
} from "./sequence.js";

const sentencePiece = new Map(
  (JSON.parse(readFileSync(join(LLAMA_DIR, "cases.json"), "utf8")).cases as { name: string; ids: number[] }[]).map(
    (c) => [c.name, c.ids],
  ),
);

const SAMPLE: Conversation = {
  image: ["lq.png", "hq.png"],
  conversations: [
    { from: "human", value: DEFAULT_HUMAN_VALUE },
    { from: "gpt", value: DEFAULT_GPT_VALUE },
  ],
  task_type: "conversation",
};

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
}

// The reference layout, pinned with the Llama-2 tokenizer, numVisualTokens 4, numTaskTokens 2.
// Each text piece is tokenised on its own, so each gets SentencePiece's "▁" prefix.
const HUMAN = [835, 12968, 29901, 529, 25518, 29958]; // "### Human: <Img>" = ▁### ▁Human : ▁< Img >
const CLOSE_SPACE = [1533, 25518, 29958, 29871]; // "</Img> " = ▁</ Img > ▁
const ASSISTANT = [29871, 13, 2277, 29937, 4007, 22137, 29901]; // "\n### Assistant:" = ▁ \n ## # Ass istant :
const IMG = [529, 25518, 29958]; // " <Img>" after "Assistant:" = ▁< Img >
const CLOSE_SEP = [1533, 25518, 29958, 13, 2277, 29937]; // "</Img>\n###" = ▁</ Img > \n ## #
const P = 0; // placeholder id

describe("buildSequence with the Llama-2 tokenizer", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await Tokenizer.fromPretrained(LLAMA_DIR);
  });

  it("pieces equal SentencePiece's ids for the same strings", () => {
    expect(HUMAN).toEqual(sentencePiece.get("lm4lv_human_prefix"));
    expect(CLOSE_SPACE).toEqual(sentencePiece.get("lm4lv_img_close_space"));
    expect([...ASSISTANT, ...IMG]).toEqual(sentencePiece.get("lm4lv_assistant_prefix"));
    expect(CLOSE_SEP).toEqual(sentencePiece.get("lm4lv_img_close_sep"));
  });

  it("builds the reference training sequence: ids, labels, spans, vision targets", () => {
    const s = buildSequence(tok, SAMPLE, { numVisualTokens: 4, numTaskTokens: 2 });
    expect(s.inputIds).toEqual([
      1, ...HUMAN, P, P, P, P, ...CLOSE_SPACE, P, P, ...ASSISTANT, ...IMG, P, P, P, P, ...CLOSE_SEP,
    ]);
    // positions: BOS 0 | human 1-6 | LQ 7-10 | "</Img> " 11-14 | task 15-16 |
    //            "\n### Assistant:" 17-23 | "<Img>" 24-26 | HQ 27-30 | "</Img>\n###" 31-36
    expect(s.labels).toEqual([
      X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
      529, 25518, 29958, X, X, X, X, 1533, 25518, 29958, 13, 2277, 29937,
    ]);
    expect(s.spans).toEqual([
      { kind: "image", role: "human", imageIndex: 0, image: "lq.png", start: 7, length: 4 },
      { kind: "task", role: "human", start: 15, length: 2 },
      { kind: "image", role: "gpt", imageIndex: 1, image: "hq.png", start: 27, length: 4 },
    ]);
    // The state at the last token of "<Img>" (26) predicts HQ token 0 (CLS); 29 predicts token 3.
    expect(s.visionTargets).toEqual([
      { position: 26, imageIndex: 1, tokenIndex: 0 },
      { position: 27, imageIndex: 1, tokenIndex: 1 },
      { position: 28, imageIndex: 1, tokenIndex: 2 },
      { position: 29, imageIndex: 1, tokenIndex: 3 },
    ]);
    expect(s.pieces.map((p) => [p.text, p.start])).toEqual([
      ["### Human: <Img>", 1],
      ["</Img> ", 11],
      ["\n### Assistant: <Img>", 17],
      ["</Img>\n###", 31],
    ]);
  });

  it("defaults to 197 visual and 10 task positions", () => {
    const s = buildSequence(tok, SAMPLE);
    expect(s.inputIds).toHaveLength(1 + 6 + 197 + 4 + 10 + 10 + 197 + 6);
    expect(s.spans.map((x) => [x.start, x.length])).toEqual([
      [7, 197],
      [208, 10],
      [228, 197],
    ]);
    expect(s.visionTargets).toHaveLength(197);
    expect(s.visionTargets[0].position).toBe(227);
    expect(s.visionTargets[196]).toEqual({ position: 227 + 196, imageIndex: 1, tokenIndex: 196 });
    expect(s.labels.filter((l) => l !== X)).toEqual([...IMG, ...CLOSE_SEP]);
  });

  it("does not mutate its input", () => {
    const frozen = deepFreeze(structuredClone(SAMPLE));
    const before = structuredClone(frozen);
    buildSequence(tok, frozen, { numVisualTokens: 4 });
    buildGenerationPrompt(tok, frozen, { numVisualTokens: 4 });
    expect(frozen).toEqual(before);
  });

  it("the generation prompt is the training sequence up to the response image", () => {
    const train = buildSequence(tok, SAMPLE, { numVisualTokens: 4, numTaskTokens: 2 });
    const fromSample = buildGenerationPrompt(tok, SAMPLE, { numVisualTokens: 4, numTaskTokens: 2 });
    const fromPath = buildGenerationPrompt(tok, "lq.png", { numVisualTokens: 4, numTaskTokens: 2 });
    const fromHumanOnly = buildGenerationPrompt(
      tok,
      { image: ["lq.png"], conversations: [{ from: "human", value: DEFAULT_HUMAN_VALUE }] },
      { numVisualTokens: 4, numTaskTokens: 2 },
    );
    const expected = [1, ...HUMAN, P, P, P, P, ...CLOSE_SPACE, P, P, ...ASSISTANT, ...IMG];
    expect(train.inputIds.slice(0, 27)).toEqual(expected);
    for (const p of [fromSample, fromPath, fromHumanOnly]) {
      expect(p.inputIds).toEqual(expected);
      expect(p.spans).toEqual(train.spans.slice(0, 2));
    }
    expect(fromSample.responseImageIndex).toBe(1);
    expect(fromPath.responseImageIndex).toBeUndefined();
    expect(tok.decode(fromPath.inputIds.slice(17))).toBe("\n### Assistant: <Img>");
  });

  it("multi-turn: headers, separators and loss per turn", () => {
    const s = buildSequence(tok, {
      conversations: [
        { from: "none", value: "Hi." },
        { from: "human", value: "Hello" },
        { from: "gpt", value: "Yes" },
        { from: "human", value: "Again" },
        { from: "gpt", value: "No" },
      ],
    });
    expect(s.pieces).toHaveLength(1);
    const text = s.pieces[0].text;
    expect(text).toBe("Hi.### Human: Hello\n### Assistant: Yes\n### Human: Again\n### Assistant: No\n###");
    const ids = s.inputIds;
    expect(ids).toEqual([1, ...tok.encode(text)]);
    // The loss covers exactly the gpt values with their closing "\n###".
    // "▁Yes"/"▁No" straddle the header's trailing space and the value: they go to the value.
    const lossTokens = s.labels.filter((l) => l !== X).map((id) => tok.idToToken(id));
    expect(lossTokens).toEqual(["▁Yes", "<0x0A>", "##", "#", "▁No", "<0x0A>", "##", "#"]);
    for (let i = 0; i < ids.length; i++) if (s.labels[i] !== X) expect(s.labels[i]).toBe(ids[i]);
  });

  it("simple task type: values concatenated, loss on gpt values", () => {
    const s = buildSequence(
      tok,
      {
        image: ["a.png", "b.png"],
        conversations: [
          { from: "human", value: "<image> turns into" },
          { from: "gpt", value: " <image> done" },
        ],
        task_type: "simple",
      },
      { numVisualTokens: 2 },
    );
    expect(s.pieces.map((p) => p.text)).toEqual([" turns into ", " done"]);
    expect(s.inputIds).toEqual([1, P, P, ...tok.encode(" turns into "), P, P, ...tok.encode(" done")]);
    const lossPositions = s.labels.flatMap((l, i) => (l === X ? [] : [i]));
    // " turns into " + " " from the gpt value form one piece; only the gpt part's tokens carry loss.
    const piece = tok.encode(" turns into ");
    const turnsInto = tok.encode(" turns into");
    expect(piece.slice(0, turnsInto.length)).toEqual(turnsInto);
    const firstLoss = 3 + turnsInto.length;
    expect(lossPositions[0]).toBe(firstLoss);
    expect(s.visionTargets.map((v) => [v.position, v.tokenIndex])).toEqual([
      [3 + piece.length - 1, 0],
      [3 + piece.length, 1],
    ]);
  });

  it("addBos false and a custom placeholder id", () => {
    const s = buildSequence(tok, SAMPLE, { numVisualTokens: 1, numTaskTokens: 1, addBos: false, placeholderId: 7 });
    expect(s.inputIds.slice(0, 8)).toEqual([...HUMAN, 7, 1533]);
  });

  it("special-token text in values stays text", () => {
    const s = buildSequence(tok, { conversations: [{ from: "human", value: "<s>" }], task_type: "simple" });
    expect(s.inputIds).toEqual([1, 529, 29879, 29958]);
  });

  it("errors name the problem", () => {
    const conv = (turns: unknown[], image?: string[]) => ({ image, conversations: turns }) as Conversation;
    expect(() => buildSequence(tok, conv([{ from: "human", value: "<image> <image>" }], ["a"]))).toThrow(
      /2 <image> placeholders but only 1 image/,
    );
    expect(() => buildSequence(tok, conv([{ from: "human", value: "x" }], ["a"]))).toThrow(/image\[0\] is never used/);
    expect(() => buildSequence(tok, conv([{ from: "system", value: "x" }]))).toThrow(
      /conversations\[0\]\.from: unknown role "system"/,
    );
    expect(() => buildSequence(tok, conv([{ from: "gpt", value: 3 }]))).toThrow(/conversations\[0\]\.value must be a string/);
    expect(() => buildSequence(tok, { conversations: [], task_type: "chat" } as unknown as Conversation)).toThrow(/task_type/);
    expect(() => buildSequence(tok, {} as Conversation)).toThrow(SequenceError);
    expect(() => buildSequence(tok, SAMPLE, { numVisualTokens: 0 })).toThrow(/numVisualTokens/);
    expect(() =>
      buildSequence(tok, { ...conv([{ from: "gpt", value: "<image>" }], ["a"]), task_type: "simple" }, { addBos: false }),
    ).toThrow(/position 0/);
    expect(() => buildGenerationPrompt(tok, conv([{ from: "human", value: "<image>" }]))).toThrow(/only 0 image/);
  });
});

describe("buildSequence with a byte-level BPE tokenizer", () => {
  const tok = Tokenizer.fromJSON(makeByteLevelTokenizerJson());

  it("uses the same layout; no dummy prefix, the space before <Img> stays in the header", () => {
    const s = buildSequence(tok, SAMPLE, { numVisualTokens: 2, numTaskTokens: 1 });
    const enc = (t: string) => tok.encode(t);
    expect(s.inputIds).toEqual([
      tok.bosId,
      ...enc("### Human: <Img>"), P, P,
      ...enc("</Img> "), P,
      ...enc("\n### Assistant: <Img>"), P, P,
      ...enc("</Img>\n###"),
    ]);
    const loss = s.labels.filter((l) => l !== X);
    expect(tok.decode(loss)).toBe("<Img></Img>\n###");
    const hq = s.spans[2];
    expect(s.visionTargets.map((v) => v.position)).toEqual([hq.start - 1, hq.start]);
    expect(tok.decode([s.inputIds[hq.start - 1]])).toBe(">");
  });
});
