import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "@lm4lv/core";
import { LLAMA_TINY_DIR } from "./testing.js";
import { parseLlamaConfig } from "./config.js";
import { LlamaForCausalLM } from "./model.js";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("random weights", () => {
  it("gives the pinned weights for a seed (per-tensor seeds from the Mulberry32 stream)", () => {
    // SHA-256 over the HF-named F32 tensors (sorted by name) of the tiny fixture config at seed 3,
    // computed when the seed stream was a local copy of mulberry32 (before it used core's Mulberry32).
    const raw = JSON.parse(readFileSync(join(LLAMA_TINY_DIR, "config.json"), "utf8"));
    const config = parseLlamaConfig(raw, "test");
    const lm = LlamaForCausalLM.fromConfig(config, 3);
    const tensors = lm.namedParameters(); // HF names, HF layout
    const h = createHash("sha256");
    for (const n of [...tensors.keys()].sort()) h.update(n).update(new Uint8Array((tensors.get(n)!.dataSync() as Float32Array).buffer));
    expect(tensors.size).toBe(21);
    expect(h.digest("hex")).toBe("c4158bc2a3c7db3f9a92312fddc7ab15b1d8c23404f913daab11d3da5ad954c3");
    lm.dispose();
  });
});
