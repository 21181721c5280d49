import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initBackend } from "@lm4lv/core";
import { LM4LV } from "@lm4lv/pipeline";
import { writeTinyModels, writeSyntheticPhotos, syntheticPhoto } from "@lm4lv/pipeline/testing";
import { lm4lvCommand } from "./lm4lv.js";

const root = mkdtempSync(join(tmpdir(), "lm4lv-train-cmd-"));
let dirs: { maeDir: string; llmDir: string };

beforeAll(async () => {
  await initBackend(process.env.LM4LV_BACKEND ?? "wasm");
  dirs = writeTinyModels(join(root, "models"));
  await writeSyntheticPhotos(join(root, "train"), 6, 16);
  await writeSyntheticPhotos(join(root, "val"), 2, 16);
});

describe("pnpm train lm4lv (end to end on tiny models)", () => {
  it("trains from flags + YAML, writes a checkpoint that restores images of the MAE's size", async () => {
    const { writeFileSync } = await import("node:fs");
    const yaml = join(root, "run.yaml");
    writeFileSync(yaml, `task: saltpepper\nsteps: 8\nbatch-size: 2\nlr: 0.003\ncheckpointEvery: 4\n`);
    const out = join(root, "run");
    const code = await lm4lvCommand(["--config", yaml, "--mae", dirs.maeDir, "--llm", dirs.llmDir, "--data", join(root, "train"), "--val", join(root, "val"), "--val-count", "1", "--out", out]);
    expect(code).toBe(0);
    for (const f of ["adapters.safetensors", "lm4lv.json", "loss.svg", "loss.csv", "samples.png", "checkpoints/last.safetensors"]) expect(existsSync(join(out, f))).toBe(true);
    const info = JSON.parse(readFileSync(join(out, "lm4lv.json"), "utf8"));
    expect([info.task, info.step]).toEqual(["saltpepper", 8]);
    const model = await LM4LV.fromCheckpoint(out);
    const { image, features } = await model.restore(syntheticPhoto(16, 3));
    features.dispose();
    expect([image.width, image.height]).toEqual([16, 16]);
  });

  it("rejects unknown options and bad values by name", async () => {
    await expect(lm4lvCommand(["--mae", dirs.maeDir, "--llm", dirs.llmDir, "--steps", "x"])).rejects.toThrow(/^--steps: expected a positive integer, got "x"$/);
    await expect(lm4lvCommand(["--task", "denoise", "--params", "sigmaa=3"])).rejects.toThrow(/sigmaa: task "denoise" has no such parameter/);
    await expect(lm4lvCommand(["--mae", join(root, "none"), "--llm", dirs.llmDir])).rejects.toThrow(/--mae .*none: folder not found/);
  });
});
