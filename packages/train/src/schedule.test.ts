import { describe, expect, it } from "vitest";
import { defaultWarmupSteps, makeSchedule } from "./schedule.js";

describe("schedule", () => {
  it("warmup is max(10, 10% of steps), capped at the run length", () => {
    expect(defaultWarmupSteps(50)).toBe(10);
    expect(defaultWarmupSteps(100)).toBe(10);
    expect(defaultWarmupSteps(1000)).toBe(100);
    expect(defaultWarmupSteps(1005)).toBe(101);
    expect(defaultWarmupSteps(4)).toBe(4);
  });

  it("warmup-linear: log ramp to lr at step W, then linear to 0 at the last step", () => {
    const lr = 3e-4;
    const f = makeSchedule({ lr, totalSteps: 100 }); // W = 10
    expect(f(1)).toBeCloseTo((lr * Math.log(2)) / Math.log(11), 15);
    expect(f(5)).toBeCloseTo((lr * Math.log(6)) / Math.log(11), 15);
    expect(f(10)).toBeCloseTo(lr, 15);
    expect(f(11)).toBeCloseTo((lr * 89) / 90, 15);
    expect(f(55)).toBeCloseTo(lr / 2, 15);
    expect(f(100)).toBe(0);
    // The ramp is concave (log-shaped): faster than linear early on.
    expect(f(2)).toBeGreaterThan((lr * 2) / 10);
    for (let s = 2; s <= 100; s++) {
      if (s <= 10) expect(f(s)).toBeGreaterThan(f(s - 1));
      else expect(f(s)).toBeLessThan(f(s - 1));
    }
  });

  it("cosine: same ramp, then half a cosine down to minLr", () => {
    const f = makeSchedule({ kind: "cosine", lr: 1, totalSteps: 100, minLr: 0.1 });
    expect(f(10)).toBeCloseTo(1, 15);
    expect(f(55)).toBeCloseTo(0.55, 12);
    expect(f(100)).toBeCloseTo(0.1, 15);
    expect(f(3)).toBeCloseTo(Math.log(4) / Math.log(11), 15);
  });

  it("constant: lr everywhere, optional ramp", () => {
    const f = makeSchedule({ kind: "constant", lr: 0.5, totalSteps: 20 });
    expect([1, 7, 20].map(f)).toEqual([0.5, 0.5, 0.5]);
    const g = makeSchedule({ kind: "constant", lr: 0.5, totalSteps: 20, warmupSteps: 4 });
    expect(g(2)).toBeCloseTo((0.5 * Math.log(3)) / Math.log(5), 15);
    expect(g(4)).toBeCloseTo(0.5, 15);
    expect(g(5)).toBe(0.5);
  });

  it("runs shorter than the warmup are all ramp", () => {
    const f = makeSchedule({ lr: 1, totalSteps: 4 });
    expect(f(4)).toBeCloseTo(1, 15);
    expect(f(1)).toBeCloseTo(Math.log(2) / Math.log(5), 15);
  });

  it("rejects steps outside 1..T and bad options", () => {
    const f = makeSchedule({ lr: 1, totalSteps: 10 });
    expect(() => f(0)).toThrow(/\[1, 10\]/);
    expect(() => f(11)).toThrow(/\[1, 10\]/);
    expect(() => makeSchedule({ lr: 1, totalSteps: 0 })).toThrow(/totalSteps/);
    expect(() => makeSchedule({ lr: 1, totalSteps: 10, kind: "step" as never })).toThrow(/unknown kind/);
  });
});
