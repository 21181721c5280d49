import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LM4LV_TRAINING_OPTIONS } from "@lm4lv/pipeline";
import { LM4LV_OPTIONS } from "./commands/lm4lv.js";
import { LM_OPTIONS } from "./commands/lm.js";
import { MAE_OPTIONS } from "./commands/mae.js";
import { parseOptions, usage } from "./options.js";
import { REPO_ROOT } from "./paths.js";

const dir = mkdtempSync(join(tmpdir(), "lm4lv-train-options-"));
const yaml = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("pnpm train lm4lv options: defaults < YAML < flags, one zod schema", () => {
  it("merges the YAML file and the flags into typed options", () => {
    const file = yaml("ok.yaml", "task: deblur\nbatch-size: 2\nlr: 1.0e-3\nresume: true\nvalCount: 1\nengine: tfjs\n");
    const { options: o, origin } = parseOptions(["--config", file, "--batch-size", "3", "--no-resume", "--lr", "2e-3"], LM4LV_OPTIONS);
    const lr: number | undefined = o.lr; // typed by the schema
    expect(lr).toBe(2e-3);
    expect([o.task, o.batchSize, o.resume, o.valCount, o.engine, o.steps, o.clip, o.mode]).toEqual(["deblur", 3, false, 1, "tfjs", 100, 1, "lm4lv"]);
    expect(origin).toMatchObject({ task: `${file}: task`, batchSize: "--batch-size", lr: "--lr" });
  });

  it("leaves the learning rate and batch size to the trainer (one default each: LM4LV's lr is spec §7's 3e-4)", () => {
    const { options: o } = parseOptions([], LM4LV_OPTIONS);
    // the default models are the embedded ones, and they are there
    expect([o.mae, o.llm]).toEqual(["models/mae-tiny", "models/lm-wide"]);
    for (const m of [o.mae, o.llm]) expect(existsSync(join(REPO_ROOT, m, "config.json")), m).toBe(true);
    expect(o.lr).toBeUndefined();
    expect(o.batchSize).toBeUndefined();
    expect(LM4LV_TRAINING_OPTIONS.parse({ steps: 1, lr: o.lr }).lr).toBe(3e-4);
    const help = usage("lm4lv", "", LM4LV_OPTIONS);
    expect(help).toMatch(/--lr <number> +peak learning rate \(default 0\.0003; adapters-only 0\.003\)/);
    expect(help).toMatch(/--clip <number> +gradient clipping \(global norm\) \(default 1\)/);
    expect(help).toMatch(/--engine <ort\|tfjs>/);
    expect(help).toMatch(/--resume +continue from/);
  });

  it("names the YAML file and key, or the flag, of every bad value", () => {
    const file = yaml("bad.yaml", "batch-size: x\nlr: -1\nmode: lora\n");
    expect(() => parseOptions(["--config", file, "--steps", "1.5"], LM4LV_OPTIONS)).toThrow(
      `--steps: expected a positive integer, got 1.5; ${file}: batch-size: expected a positive integer, got "x"; ${file}: lr: expected a positive number, got -1; ${file}: mode: expected one of lm4lv, adapters-only, got "lora"`,
    );
    expect(() => parseOptions(["--engine", "gpu"], LM4LV_OPTIONS)).toThrow('--engine: expected one of ort, tfjs, got "gpu"');
    expect(() => parseOptions(["--config", yaml("unknown.yaml", "learning-rate: 1\n")], LM4LV_OPTIONS)).toThrow(/unknown\.yaml: unknown option "learning-rate"/);
    expect(() => parseOptions(["--config", yaml("list.yaml", "- 1\n")], LM4LV_OPTIONS)).toThrow(/list\.yaml: expected a mapping of options/);
    expect(() => parseOptions(["--config", join(dir, "none.yaml")], LM4LV_OPTIONS)).toThrow(/none\.yaml: config file not found/);
    expect(() => parseOptions(["--learning-rate", "1"], LM4LV_OPTIONS)).toThrow(/learning-rate/);
  });

  it("reads every shipped lm4lv config (models/configs/lm4lv-*.yaml)", () => {
    const configs = readdirSync(join(REPO_ROOT, "models", "configs")).filter((f) => f.startsWith("lm4lv-"));
    expect(configs.length).toBeGreaterThan(0);
    for (const f of configs) {
      const { options: o } = parseOptions(["--config", join(REPO_ROOT, "models", "configs", f)], LM4LV_OPTIONS);
      expect(o.lr, f).toBe(1e-3);
      expect(o.engine, f).toBe("ort");
      expect(existsSync(join(REPO_ROOT, o.llm, "config.json")), `${f}: llm ${o.llm}`).toBe(true);
    }
  });
});

describe("pnpm train lm options", () => {
  it("reads the shipped LM configs and names missing required options by flag", () => {
    const defaults = parseOptions(["--text", "t.txt", "--val-text", "v.txt", "--out", "o"], LM_OPTIONS).options;
    for (const f of ["lm-wide.yaml", "lm-wide-norepeat.yaml"]) {
      const { options: o } = parseOptions(["--config", join(REPO_ROOT, "models", "configs", f)], LM_OPTIONS);
      const steps: number = o.steps; // typed by the schema
      expect([steps, o.seqLen, o.lr, o.engine, o.tieEmbeddings], f).toEqual([3600, 192, 0.002, "ort", true]);
      // lm-wide's shape (models/lm-wide/config.json), which is also what `pnpm train lm` builds by default
      const shape = [o.hiddenSize, o.numLayers, o.numHeads, o.numKvHeads, o.intermediateSize, o.maxPositions];
      expect(shape, f).toEqual([512, 3, 16, 16, 384, 512]);
      expect([defaults.hiddenSize, defaults.numLayers, defaults.numHeads, defaults.numKvHeads, defaults.intermediateSize, defaults.maxPositions]).toEqual(shape);
      // the committed tokenizer they reuse
      expect(o.tokenizer, f).toBe("models/lm-wide");
      expect(existsSync(join(REPO_ROOT, o.tokenizer!, "tokenizer.json")), f).toBe(true);
    }
    expect(parseOptions(["--config", join(REPO_ROOT, "models", "configs", "lm-wide.yaml")], LM_OPTIONS).options.out).toBe("models/lm-wide");
    expect(() => parseOptions(["--text", "t.txt"], LM_OPTIONS)).toThrow("--val-text: missing (expected a text file); --out: missing (expected a folder)");
    const file = yaml("lm.yaml", "text: t.txt\nval-text: v.txt\nout: o\nnum-heads: 0\ntie-embeddings: 1\n");
    expect(() => parseOptions(["--config", file], LM_OPTIONS)).toThrow(`${file}: num-heads: expected a positive integer, got 0; ${file}: tie-embeddings: expected true or false, got 1`);
  });
});

describe("pnpm train mae options", () => {
  it("reads the shipped MAE config; the run's defaults are trainMae's; names bad values and missing options", () => {
    const { options: o } = parseOptions(["--config", join(REPO_ROOT, "models", "configs", "mae-tiny.yaml")], MAE_OPTIONS);
    const size: number | undefined = o.imageSize; // typed by the schema
    expect([o.stage, size, o.layerNormEps, o.dtype, o.valEvery, o.flip, o.engine]).toEqual(["autoencode", 64, 1e-6, "f16", 500, true, "ort"]);
    const d = parseOptions(["--data", "d", "--out", "o"], MAE_OPTIONS).options;
    expect([d.stage, d.steps, d.batchSize, d.lr, d.checkpointEvery, d.valEvery, d.preset, d.clip]).toEqual(["pretrain", 1000, 32, 1.5e-3, 50, 100, "tiny", undefined]);
    expect(usage("mae", "", MAE_OPTIONS)).toMatch(/--clip <number> +max global gradient norm, 0: no clipping \(default 1\)/);
    expect(() => parseOptions(["--stage", "distil", "--preset", "mae-giant", "--mask-ratio", "1"], MAE_OPTIONS)).toThrow(
      '--stage: expected one of pretrain, finetune, autoencode, got "distil"; --data: missing (expected a folder of images); --out: missing (expected a folder); --preset: expected one of tiny, mae-base, mae-large, mae-huge, got "mae-giant"; --mask-ratio: expected a number in [0, 1), got 1',
    );
  });
});
