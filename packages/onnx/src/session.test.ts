import { describe, expect, it } from "vitest";
import { executionProviders, sessionConfig, sessionOptions } from "./session.js";

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

describe("memory options and session config entries", () => {
  it("passes no extra entries by default", () => {
    const o = sessionOptions({ intraOpThreads: 1 });
    expect(sessionConfig({}, {})).toEqual({});
    expect(o.enableCpuMemArena).toBeUndefined();
    expect(o.enableMemPattern).toBeUndefined();
  });

  it("maps prepacking, arena and memory pattern to ORT's options", () => {
    const o = sessionOptions({ intraOpThreads: 1, prepacking: false, cpuMemArena: false, memPattern: false });
    expect(o.extra).toMatchObject({ "session.disable_prepacking": "1" });
    expect(o.enableCpuMemArena).toBe(false);
    expect(o.enableMemPattern).toBe(false);
    expect(sessionConfig({ prepacking: true }, {})).toEqual({ "session.disable_prepacking": "0" });
  });

  it("reads LM4LV_ORT_CONFIG; options win over it", () => {
    const env = { LM4LV_ORT_CONFIG: " session.disable_prepacking=1 , session.use_device_allocator_for_initializers = 1" };
    expect(sessionConfig({}, env)).toEqual({ "session.disable_prepacking": "1", "session.use_device_allocator_for_initializers": "1" });
    expect(sessionConfig({ prepacking: true, sessionConfig: { "session.use_device_allocator_for_initializers": "0" } }, env)).toEqual({
      "session.disable_prepacking": "0",
      "session.use_device_allocator_for_initializers": "0",
    });
    expect(() => sessionConfig({}, { LM4LV_ORT_CONFIG: "session.disable_prepacking" })).toThrow(/LM4LV_ORT_CONFIG: expected key=value/);
  });
});
