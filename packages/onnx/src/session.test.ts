import { describe, expect, it } from "vitest";
import { executionProviders, sessionOptions } from "./session.js";

describe("execution providers", () => {
  it("defaults to the CPU provider", () => {
    expect(executionProviders({}, {})).toEqual(["cpu"]);
    expect(sessionOptions({ intraOpThreads: 1 }).executionProviders).toEqual(executionProviders());
  });

  it("reads LM4LV_ORT_PROVIDERS, and an explicit option wins over it", () => {
    expect(executionProviders({}, { LM4LV_ORT_PROVIDERS: " CUDA , cpu" })).toEqual(["cuda", "cpu"]);
    expect(executionProviders({ executionProviders: ["cpu"] }, { LM4LV_ORT_PROVIDERS: "cuda" })).toEqual(["cpu"]);
  });

  it("names the variable or option and the unknown provider", () => {
    expect(() => executionProviders({}, { LM4LV_ORT_PROVIDERS: "cuda,gpu" })).toThrow(/LM4LV_ORT_PROVIDERS: unknown execution provider "gpu"/);
    expect(() => executionProviders({ executionProviders: [] }, {})).toThrow(/executionProviders: empty provider list/);
  });
});
