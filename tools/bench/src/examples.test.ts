import { describe, expect, it } from "vitest";
import { parseExamplesArgs } from "./examples.js";

describe("examples options", () => {
  it("defaults and flags", () => {
    expect(parseExamplesArgs([])).toEqual({ image: "coffee.png", tasks: ["denoise", "saltpepper", "identity"] });
    expect(parseExamplesArgs(["--image", "camera.png", "--tasks", "deblur,hflip"])).toEqual({ image: "camera.png", tasks: ["deblur", "hflip"] });
  });

  it.each([
    [["--tasks", "denoise,sharpen"], /--tasks: expected task names \(denoise, .*\), got "sharpen"/],
    [["--task", "denoise"], /Unknown option '--task'/],
    [["photo.png"], /unexpected argument "photo.png"/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseExamplesArgs(argv as string[])).toThrow(message);
  });
});
