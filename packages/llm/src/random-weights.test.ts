import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseLlamaConfig } from "./config.js";
import { randomWeights, weightsToSafetensors } from "./weights.js";

describe("randomWeights", () => {
  it("gives the pinned weights for a seed (per-tensor seeds from the Mulberry32 stream)", () => {
    // SHA-256 over the HF-named F32 tensors (sorted by name) of the tiny fixture config at seed 3,
    // computed when the seed stream was a local copy of mulberry32 (before it used core's Mulberry32).
    const raw = JSON.parse(readFileSync(fileURLToPath(new URL("../fixtures/llama_tiny/config.json", import.meta.url)), "utf8"));
    const config = parseLlamaConfig(raw, "test");
    const tensors = weightsToSafetensors(config, randomWeights(config, 3), "F32");
    const h = createHash("sha256");
    for (const n of Object.keys(tensors).sort()) h.update(n).update(new Uint8Array((tensors[n].data as Float32Array).buffer));
    expect(Object.keys(tensors)).toHaveLength(21);
    expect(h.digest("hex")).toBe("c4158bc2a3c7db3f9a92312fddc7ab15b1d8c23404f913daab11d3da5ad954c3");
  });
});
