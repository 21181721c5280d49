import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend, SafetensorsFile, writeSafetensors } from "@lm4lv/core";
import { LM4LVAdapters } from "./adapters.js";
import { loadAdapters, readCheckpointInfo, saveAdapters } from "./checkpoint.js";
import { maxAbsDiff } from "@lm4lv/core/testing";

beforeAll(async () => {
  await initBackend("cpu");
});

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lm4lv-adapters-"));
  dirs.push(d);
  return d;
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const RUN = { visionModel: "models/vit-mae-r", llm: "models/llama-2-7b-chat", task: "denoise_50", numVisualTokens: 197, step: 120, extra: { lr: 3e-4, seed: 1 } };

describe("saveAdapters / loadAdapters", () => {
  it("round-trips the trained parameters and the run description", () => {
    const dir = join(tempDir(), "ckpt"); // created on save
    const task = Float32Array.from({ length: 4 * 16 }, (_, i) => i / 7);
    const a = new LM4LVAdapters({ visionHidden: 8, llmHidden: 16, numTaskTokens: 4, seed: 3 }, { task_tokens: task });
    saveAdapters(dir, a, RUN);
    expect(readdirSync(dir).sort()).toEqual(["adapters.safetensors", "lm4lv.json"]); // no temporary files left
    const st = SafetensorsFile.open(join(dir, "adapters.safetensors"));
    expect(st.keys().sort()).toEqual(["adapter.bias", "adapter.weight", "de_adapter.bias", "de_adapter.weight", "task_tokens"]);
    expect(st.entry("adapter.weight").shape).toEqual([16, 8]);
    st.close();
    const json = JSON.parse(readFileSync(join(dir, "lm4lv.json"), "utf8"));
    expect(json).toMatchObject({ format: "lm4lv-adapters", version: 1, ...RUN, visionHidden: 8, llmHidden: 16, numTaskTokens: 4 });

    const { adapters: b, info } = loadAdapters(dir, { visionHidden: 8, llmHidden: 16 });
    expect(info).toEqual(readCheckpointInfo(dir));
    expect(info.extra).toEqual(RUN.extra);
    const sa = a.snapshot();
    const sb = b.snapshot();
    for (const name of Object.keys(sa) as (keyof typeof sa)[]) {
      expect(sb[name].shape, name).toEqual(sa[name].shape);
      expect(maxAbsDiff(sb[name].data, sa[name].data), name).toBe(0);
    }
    a.dispose();
    b.dispose();
  });

  it("stores F16 when asked (half the bytes, each value within half an F16 ulp) and loads it back as F32", () => {
    const [d32, d16] = [join(tempDir(), "f32"), join(tempDir(), "f16")];
    const a = new LM4LVAdapters({ visionHidden: 24, llmHidden: 40, numTaskTokens: 3, seed: 5 });
    saveAdapters(d32, a, RUN);
    saveAdapters(d16, a, RUN, { dtype: "F16" });
    const st = SafetensorsFile.open(join(d16, "adapters.safetensors"));
    expect(st.keys().map((k) => st.entry(k).dtype)).toEqual(Array(5).fill("F16"));
    st.close();
    const bytes = (d: string) => statSync(join(d, "adapters.safetensors")).size;
    const params = 2 * 24 * 40 + 24 + 40 + 3 * 40;
    expect(bytes(d32) - bytes(d16)).toBeGreaterThanOrEqual(2 * params - 64); // headers differ by a few bytes
    const { adapters: b } = loadAdapters(d16, { visionHidden: 24, llmHidden: 40 });
    const [sa, sb] = [a.snapshot(), b.snapshot()];
    let changed = 0;
    for (const name of Object.keys(sa) as (keyof typeof sa)[]) {
      sa[name].data.forEach((x, i) => {
        const y = sb[name].data[i];
        // F16 has 11 significant bits: rounding moves a normal value by at most |x|·2^-11
        expect(Math.abs(y - x), `${name}[${i}]`).toBeLessThanOrEqual(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
        if (y !== x) changed++;
      });
    }
    expect(changed).toBeGreaterThan(params / 2); // really rounded, not stored at F32
    expect(() => saveAdapters(tempDir(), a, RUN, { dtype: "BF16" as "F16" })).toThrow('saveAdapters: dtype must be one of F32, F16, got "BF16"');
    a.dispose();
    b.dispose();
  });

  it("names every tensor that does not fit the models", () => {
    const dir = tempDir();
    const a = new LM4LVAdapters({ visionHidden: 8, llmHidden: 16, numTaskTokens: 2 });
    saveAdapters(dir, a, RUN);
    a.dispose();
    let message = "";
    try {
      loadAdapters(dir, { visionHidden: 8, llmHidden: 32 });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/llmHidden: the LLM has 32, the checkpoint was trained with 16/);
    expect(message).toMatch(/adapter\.weight: expected shape \[32,8\], found \[16,8\]/);
    expect(message).toMatch(/adapter\.bias: expected shape \[32\], found \[16\]/);
    expect(message).toMatch(/de_adapter\.weight: expected shape \[8,32\], found \[8,16\]/);
    expect(message).toMatch(/task_tokens: expected shape \[2,32\], found \[2,16\]/);
    expect(message).not.toMatch(/de_adapter\.bias/);
  });

  it("reports missing and unexpected tensors, and a missing or foreign lm4lv.json", () => {
    const dir = tempDir();
    const a = new LM4LVAdapters({ visionHidden: 4, llmHidden: 6, numTaskTokens: 1 });
    saveAdapters(dir, a, RUN);
    const snap = a.snapshot();
    a.dispose();
    const { "de_adapter.bias": _dropped, ...rest } = snap;
    writeSafetensors(join(dir, "adapters.safetensors"), { ...rest, "lora.q.A": { shape: [2], data: new Float32Array(2) } });
    expect(() => loadAdapters(dir, { visionHidden: 4, llmHidden: 6 })).toThrow(/de_adapter\.bias: missing \(expected shape \[4\]\)[\s\S]*lora\.q\.A: unexpected tensor/);

    rmSync(join(dir, "adapters.safetensors"));
    expect(() => loadAdapters(dir, { visionHidden: 4, llmHidden: 6 })).toThrow(/adapters\.safetensors: file not found/);
    writeFileSync(join(dir, "lm4lv.json"), JSON.stringify({ format: "something-else" }));
    expect(() => loadAdapters(dir, { visionHidden: 4, llmHidden: 6 })).toThrow(/lm4lv\.json: format: expected "lm4lv-adapters" \(not an LM4LV adapter checkpoint\), got "something-else"$/);
    rmSync(join(dir, "lm4lv.json"));
    expect(existsSync(join(dir, "lm4lv.json"))).toBe(false);
    expect(() => loadAdapters(dir, { visionHidden: 4, llmHidden: 6 })).toThrow(/lm4lv\.json: file not found/);
  });

  it("validates lm4lv.json field by field, naming the file and each bad field; keeps fields it does not know", () => {
    const dir = tempDir();
    const a = new LM4LVAdapters({ visionHidden: 4, llmHidden: 6, numTaskTokens: 1 });
    saveAdapters(dir, a, { ...RUN, extra: { ...RUN.extra, tokenizer: "../tok" } });
    a.dispose();
    const file = join(dir, "lm4lv.json");
    const good = JSON.parse(readFileSync(file, "utf8"));
    const info = readCheckpointInfo(dir);
    const width: number = info.visionHidden; // typed by the schema
    expect(width).toBe(4);
    expect(info.extra.tokenizer).toBe("../tok");
    expect(info.lora).toBeNull();

    writeFileSync(file, JSON.stringify({ ...good, note: "kept", lora: undefined, extra: undefined }));
    expect(readCheckpointInfo(dir)).toMatchObject({ note: "kept", lora: null, extra: {} });

    writeFileSync(file, JSON.stringify({ ...good, version: 2 }));
    expect(() => readCheckpointInfo(dir)).toThrow(`${file}: version: expected 1 (the version this code reads), got 2`);
    writeFileSync(file, JSON.stringify({ ...good, llm: 7, step: -1, visionHidden: "4", extra: [] }));
    expect(() => readCheckpointInfo(dir)).toThrow(
      `${file}: llm: expected a folder path (a string), got 7; step: expected an integer >= 0, got -1; extra: expected an object, got []; visionHidden: expected an integer >= 0, got "4"`,
    );
    writeFileSync(file, JSON.stringify({ ...good, lora: { rank: 0, alpha: 16, targets: ["q", "x"] } }));
    expect(() => readCheckpointInfo(dir)).toThrow(`${file}: lora.rank: expected a positive integer, got 0; lora.targets[1]: expected one of q, k, v, o, got "x"`);
    writeFileSync(file, JSON.stringify({ ...good, lora: { rank: 4, alpha: 8, targets: ["q", "v"] } }));
    expect(readCheckpointInfo(dir).lora).toEqual({ rank: 4, alpha: 8, targets: ["q", "v"], seed: 0 });
    writeFileSync(file, JSON.stringify({ ...good, extra: { tokenizer: 3 } }));
    expect(() => readCheckpointInfo(dir)).toThrow(`${file}: extra.tokenizer: expected a folder path (a string), got 3`);
  });

  it("checks what it is asked to save", () => {
    const a = new LM4LVAdapters({ visionHidden: 4, llmHidden: 6, numTaskTokens: 1 });
    expect(() => saveAdapters(tempDir(), a, { ...RUN, step: 1.5 })).toThrow("saveAdapters: run.step: expected an integer >= 0, got 1.5");
    expect(() => saveAdapters(tempDir(), a, { ...RUN, task: undefined as unknown as string })).toThrow("saveAdapters: run.task: missing (expected a task name (a string))");
    a.dispose();
  });
});
