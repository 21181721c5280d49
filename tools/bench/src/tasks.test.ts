import { describe, expect, it } from "vitest";
import { parseTasksArgs } from "./tasks.js";

describe("bench:tasks options", () => {
  it("defaults and tools/train-embedded.sh's --tasks list", () => {
    expect(parseTasksArgs([])).toMatchObject({ tasks: ["denoise", "deblur", "saltpepper", "mask", "hflip"] });
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
