import { describe, expect, it } from "vitest";
import { gaussianBlur, rotate90 } from "./degradations.js";
import { TASKS, TASK_NAMES, degrade, getTask, makePair } from "./tasks.js";
import { randomImage, smoothImage } from "./testing.js";

describe("TASKS registry", () => {
  it("has the LM4LV task names with spec §8 defaults", () => {
    expect(TASK_NAMES).toEqual([
      "denoise", "denoise15", "denoise25", "deblur", "derain", "saltpepper", "mask", "jpeg",
      "rot90", "rot180", "rot270", "hflip", "vflip", "identity",
    ]);
    expect(TASKS.denoise.params.sigma).toBe(50);
    expect(TASKS.denoise15.params.sigma).toBe(15);
    expect(TASKS.denoise25.params.sigma).toBe(25);
    expect(TASKS.deblur.params).toEqual({ kernelSize: 21, sigma: 3 });
    expect(TASKS.saltpepper.params.ratio).toBe(0.1);
    expect(TASKS.mask.params).toMatchObject({ patch: 16, ratio: 0.25, value: 0 });
    expect(TASK_NAMES.filter((n) => TASKS[n].kind === "spatial")).toEqual(["rot90", "rot180", "rot270", "hflip", "vflip", "identity"]);
  });

  it("unknown tasks and parameters are named in the error", async () => {
    const img = randomImage(4, 4, 1);
    expect(() => getTask("sharpen")).toThrow(/unknown task "sharpen" \(known: denoise, /);
    await expect(degrade("denoise", img, 0, { sigmaa: 3 })).rejects.toThrow(/task "denoise": unknown parameter "sigmaa" \(known: sigma, quantize\)/);
    await expect(degrade("rot90", img, 0, { k: 2 })).rejects.toThrow(/it takes none/);
  });

  it("degrade applies the task's op with its defaults, overridable", async () => {
    const img = smoothImage(24, 24);
    expect(await degrade("deblur", img, 0)).toEqual(gaussianBlur(img, { kernelSize: 21, sigma: 3 }));
    expect(await degrade("deblur", img, 0, { sigma: 1 })).toEqual(gaussianBlur(img, { kernelSize: 21, sigma: 1 }));
    expect((await degrade("denoise", img, 0, { sigma: 0 })).data).toEqual(img.data);
    expect(await degrade("rot270", img, 0)).toEqual(rotate90(img, 3));
  });

  it("same seed → identical output, different seed → different (every random task); input never mutated", async () => {
    const img = smoothImage(32, 32);
    const copy = new Float32Array(img.data);
    for (const name of TASK_NAMES) {
      const a = await degrade(name, img, 1);
      const b = await degrade(name, img, 1);
      expect(a, name).toEqual(b);
      if (["denoise", "denoise15", "denoise25", "derain", "saltpepper", "mask"].includes(name)) {
        const c = await degrade(name, img, 2);
        expect(c.data, name).not.toEqual(a.data);
      }
    }
    // mask needs a grid > 1 patch at 32 px with patch 16: 4 patches, 1 masked.
    expect(img.data).toEqual(copy);
  });

  it("makePair: restoration → (op(clean), clean); spatial → (clean, op(clean))", async () => {
    const clean = randomImage(8, 6, 3);
    const r = await makePair("saltpepper", clean, 4);
    expect(r.hq).toBe(clean);
    expect(r.lq).toEqual(await degrade("saltpepper", clean, 4));
    const s = await makePair("rot90", clean, 4);
    expect(s.lq).toBe(clean);
    expect(s.hq).toEqual(rotate90(clean, 1));
  });
});
