import { afterAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatasetError } from "@lm4lv/data";
import { listInferenceItems } from "./inference.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-infer-items-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const write = (name: string, json: unknown) => {
  const p = join(root, name);
  writeFileSync(p, JSON.stringify(json));
  return p;
};

describe("listInferenceItems: a pairs JSON (the reference format's image field)", () => {
  it("reads inputs and targets relative to the JSON file; conversations are not needed; a single path is an input", () => {
    mkdirSync(join(root, "sub"), { recursive: true });
    const p = write("sub/pairs.json", [
      { image: ["lq/a.png", "hq/a.png"], conversations: [{ from: "human", value: "<image>" }, { from: "gpt", value: "<image>" }] },
      { image: ["/abs/b.png"] },
      { image: "lq/c.png" },
    ]);
    expect(listInferenceItems(p)).toEqual([
      { name: "0000_a", input: join(root, "sub", "lq/a.png"), target: join(root, "sub", "hq/a.png") },
      { name: "0001_b", input: "/abs/b.png", target: undefined },
      { name: "0002_c", input: join(root, "sub", "lq/c.png"), target: undefined },
    ]);
  });

  it("names the file, the item and the field of every problem", () => {
    const p = write("bad.json", [{ image: [] }, { image: [3] }, { conversations: [] }]);
    expect(() => listInferenceItems(p)).toThrow(DatasetError);
    expect(() => listInferenceItems(p)).toThrow(
      `${p}: item 0: image: expected at least one path (the input), got []; item 1: image[0]: expected a path (a string), got 3; item 2: image: missing (expected a path or a list of paths)`,
    );
    expect(() => listInferenceItems(write("obj.json", { image: ["a.png"] }))).toThrow(/obj\.json: expected a JSON list of items/);
    writeFileSync(join(root, "broken.json"), "[{");
    expect(() => listInferenceItems(join(root, "broken.json"))).toThrow(/broken\.json: not valid JSON/);
    expect(() => listInferenceItems(join(root, "none.json"))).toThrow(/none\.json: no such file or folder/);
  });
});
