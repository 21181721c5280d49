import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseTasksArgs } from "./tasks.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("bench:tasks options", () => {
  it("defaults (every checkpoint shipped in models/lm4lv-tiny) and tools/train-embedded.sh's --tasks list", () => {
    const shipped = readdirSync(join(ROOT, "models", "lm4lv-tiny")).filter((d) => existsSync(join(ROOT, "models", "lm4lv-tiny", d, "lm4lv.json")));
    expect([...parseTasksArgs([])!.tasks].sort()).toEqual(shipped.sort());
    const o = parseTasksArgs(["--tasks", "identity,denoise25,denoise,deblur,saltpepper,derain,hflip,rot90", "--out", "/tmp/d"])!;
    expect(o.tasks).toHaveLength(8);
    expect(o.out).toBe("/tmp/d");
    expect(o.models).toMatch(/models\/lm4lv-tiny$/);
  });

  it.each([
    [["--tasks", "denoise,blur"], /--tasks: expected task names \(denoise, .*\), got "blur"/],
    [["--tasks", ""], /--tasks: expected a comma-separated list/],
    [["--model", "m"], /Unknown option '--model'/],
    [["denoise"], /unexpected argument "denoise"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseTasksArgs(argv as string[])).toThrow(message);
  });
});
