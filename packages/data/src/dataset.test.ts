import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImage, writeImage } from "@lm4lv/core";
import { DatasetError, FolderPairDataset, JsonDataset, PAIR_CONVERSATION, readDataItems, writeDegradedDataset } from "./dataset.js";
import { listImages } from "./index.js";
import { rotate90 } from "./degradations.js";
import { degrade } from "./tasks.js";
import { maxAbsDiff } from "@lm4lv/core/testing";
import { randomImage, smoothImage } from "./testing.js";

let root: string;
let clean: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "lm4lv-data-test-"));
  clean = join(root, "clean");
  mkdirSync(clean);
  // Names out of order and mixed formats; a non-image file that must be ignored.
  await writeImage(join(clean, "c.png"), smoothImage(20, 24));
  await writeImage(join(clean, "a.png"), randomImage(24, 24, 1));
  await writeImage(join(clean, "b.jpg"), randomImage(30, 18, 2), { quality: 95 });
  writeFileSync(join(clean, "notes.txt"), "not an image");
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("FolderPairDataset", () => {
  it("lists images sorted by name and makes reproducible restoration pairs", async () => {
    const ds = new FolderPairDataset(clean, "denoise", { size: 16, seed: 3 });
    expect(ds.length).toBe(3);
    expect(ds.names).toEqual(["a.png", "b.jpg", "c.png"]);
    const s = await ds.get(1);
    const img = await readImage(join(clean, "b.jpg"), { size: 16 });
    expect(s.name).toBe("b.jpg");
    expect(s.hq).toEqual(img); // HQ = clean
    expect(s.lq).toEqual(await degrade("denoise", img, ds.itemSeed(1, 0))); // LQ = degrade(clean)
    expect(s.conversation).toEqual(PAIR_CONVERSATION);
    expect((await ds.get(1, 0)).lq).toEqual(s.lq);
    expect((await ds.get(1, 1)).lq.data).not.toEqual(s.lq.data); // new epoch → new noise
    const other = new FolderPairDataset(clean, "denoise", { size: 16, seed: 4 });
    expect((await other.get(1)).lq.data).not.toEqual(s.lq.data);
  });

  it("spatial tasks: LQ = clean, HQ = op(clean)", async () => {
    const ds = new FolderPairDataset(clean, "rot90", { size: 12 });
    const s = await ds.get(2);
    expect(s.lq).toEqual(await readImage(join(clean, "c.png"), { size: 12 }));
    expect(s.hq).toEqual(rotate90(s.lq, 1));
  });

  it("applies param overrides", async () => {
    const ds = new FolderPairDataset(clean, "denoise", { size: 8, params: { sigma: 0 } });
    const s = await ds.get(0);
    expect(s.lq).toEqual(s.hq);
  });

  it("names the problem: missing folder, empty folder, unknown task, bad index", async () => {
    expect(() => new FolderPairDataset(join(root, "nope"), "denoise")).toThrow(/nope: not a folder/);
    const empty = join(root, "empty");
    mkdirSync(empty, { recursive: true });
    expect(() => listImages(empty)).toThrow(/empty: no image files/);
    expect(() => new FolderPairDataset(clean, "sharpen")).toThrow(/unknown task "sharpen"/);
    await expect(new FolderPairDataset(clean, "identity").get(3)).rejects.toThrow(/index 3 out of range \[0, 3\)/);
  });
});

describe("writeDegradedDataset + JsonDataset", () => {
  it("writes lq/hq PNGs and data.json that read back as the same pairs (up to uint8 rounding)", async () => {
    const out = join(root, "out-mask");
    const progress: string[] = [];
    const { count, jsonPath } = await writeDegradedDataset(clean, out, "mask", {
      size: 16,
      seed: 7,
      params: { patch: 4 },
      onProgress: (done, total, name) => progress.push(`${done}/${total} ${name}`),
    });
    expect(count).toBe(3);
    expect(progress).toEqual(["1/3 a.png", "2/3 b.jpg", "3/3 c.png"]);
    const items = JSON.parse(readFileSync(jsonPath, "utf8"));
    expect(items[1]).toEqual({
      image: ["lq/b.png", "hq/b.png"],
      conversations: [
        { from: "human", value: "<Img><image></Img> <task>" },
        { from: "gpt", value: "<Img><image></Img>" },
      ],
      task_type: "conversation",
    });

    const onTheFly = new FolderPairDataset(clean, "mask", { size: 16, seed: 7, params: { patch: 4 } });
    const js = JsonDataset.open(out, { size: 16 }); // a folder means its data.json
    expect(js.length).toBe(3);
    for (let i = 0; i < 3; i++) {
      const a = await js.get(i);
      const b = await onTheFly.get(i, 0);
      expect(a.conversation).toEqual(b.conversation);
      expect(maxAbsDiff(a.lq.data, b.lq.data)).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
      expect(maxAbsDiff(a.hq.data, b.hq.data)).toBeLessThanOrEqual(0.5 / 255 + 1e-6);
    }
  });

  it("refuses two inputs that map to the same output name", async () => {
    const dup = join(root, "dup");
    mkdirSync(dup);
    await writeImage(join(dup, "x.png"), randomImage(4, 4, 1));
    await writeImage(join(dup, "x.jpg"), randomImage(4, 4, 2));
    await expect(writeDegradedDataset(dup, join(root, "dup-out"), "identity")).rejects.toThrow(/"x.jpg" and "x.png" would both be written as x.png/);
  });
});

describe("JsonDataset validation", () => {
  const write = (name: string, json: unknown) => {
    const p = join(root, name);
    writeFileSync(p, typeof json === "string" ? json : JSON.stringify(json));
    return p;
  };
  const conv = PAIR_CONVERSATION.map((t) => ({ ...t }));

  it("accepts absolute paths and a single-path 'image' with { pairs: false }", async () => {
    const abs = join(clean, "a.png");
    const p = write("abs.json", [{ image: [abs, "clean/c.png"], conversations: conv }]);
    const ds = JsonDataset.open(p, { size: 8 });
    const s = await ds.get(0);
    expect(s.lq).toEqual(await readImage(abs, { size: 8 }));
    expect(s.hq).toEqual(await readImage(join(clean, "c.png"), { size: 8 }));
    const single = write("single.json", [{ image: "clean/a.png", conversations: [{ from: "human", value: "<image> describe" }] }]);
    const one = JsonDataset.open(single, { pairs: false });
    expect((await one.getImages(0))[0].width).toBe(24);
    await expect(one.get(0)).rejects.toThrow(/get\(\) needs 2 images, the item has 1/);
  });

  it("names the item and field at fault", () => {
    expect(() => JsonDataset.open(join(root, "missing.json"))).toThrow(/missing.json: dataset JSON not found/);
    expect(() => JsonDataset.open(write("bad.json", "{oops"))).toThrow(/bad.json: not valid JSON/);
    expect(() => JsonDataset.open(write("obj.json", { a: 1 }))).toThrow(/expected a JSON list/);
    expect(() => JsonDataset.open(write("nofile.json", [{ image: ["clean/a.png", "clean/zzz.png"], conversations: conv }]))).toThrow(
      /nofile.json: item 0: image\[1\]: "clean\/zzz.png" not found/,
    );
    expect(() =>
      JsonDataset.open(write("count.json", [{ image: ["clean/a.png", "clean/c.png"], conversations: [{ from: "human", value: "<image>" }] }])),
    ).toThrow(/count.json: item 0: image: 2 path\(s\) but the conversation has 1 <image> placeholder\(s\), got \["clean\/a.png","clean\/c.png"\]/);
    expect(() =>
      JsonDataset.open(write("role.json", [{ image: ["clean/a.png"], conversations: [{ from: "bot", value: "<image>" }] }], )),
    ).toThrow(/role.json: item 0: conversations\[0\]\.from: expected one of human, gpt, none, got "bot"/);
    expect(() =>
      JsonDataset.open(write("type.json", [{ image: ["clean/a.png", "clean/c.png"], conversations: conv, task_type: "x" }])),
    ).toThrow(/type.json: item 0: task_type: expected one of conversation, simple, got "x"/);
    expect(() => JsonDataset.open(write("one.json", [{ image: ["clean/a.png"], conversations: [{ from: "human", value: "<image>" }] }]))).toThrow(
      /one.json: item 0: image: expected 2 images \(LQ, HQ\), got 1/,
    );
  });
});

describe("readDataItems (the reference JSON list, validated by DATA_ITEM_SCHEMA)", () => {
  const write = (name: string, json: unknown) => {
    const p = join(root, name);
    writeFileSync(p, JSON.stringify(json));
    return p;
  };
  const conv = PAIR_CONVERSATION.map((t) => ({ ...t }));

  it("returns typed items (a single path reads as a list; unknown fields dropped)", () => {
    const p = write("good.json", [{ image: ["lq/a.png", "hq/a.png"], conversations: conv, task_type: "conversation", id: 7 }, { image: "x.png", conversations: [{ from: "human", value: "<image>" }] }]);
    const { path, items } = readDataItems(p);
    expect(path).toBe(p);
    const first: string = items[0].image[1]; // typed by the schema
    expect(first).toBe("hq/a.png");
    expect(items).toEqual([
      { image: ["lq/a.png", "hq/a.png"], conversations: conv, task_type: "conversation" },
      { image: ["x.png"], conversations: [{ from: "human", value: "<image>" }] },
    ]);
  });

  it("lists every bad item and field at once, naming the file", () => {
    const p = write("bad-items.json", [
      { image: ["a.png", ""], conversations: conv },
      { image: 3, conversations: [] },
      { conversations: [{ from: "human" }] },
    ]);
    expect(() => readDataItems(p)).toThrow(DatasetError);
    expect(() => readDataItems(p)).toThrow(
      `${p}: item 0: image[1]: expected a non-empty path, got ""; ` +
        "item 1: image: expected a path or a list of paths, got 3; item 1: conversations: expected a non-empty list of turns, got []; " +
        "item 2: image: missing (expected a path or a list of paths); item 2: conversations[0].value: missing (expected a string)",
    );
  });
});
