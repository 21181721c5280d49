/**
 * Installs the packed packages the way a user would (npm, outside the monorepo) and runs a
 * five-line script against them. Slow (npm install): runs in CI, or locally with
 * LM4LV_STANDALONE_TEST=1. Needs the dist/ of mae and of the workspace packages it depends on
 * (core; train, data, metrics, tokenizer for the training code): turbo builds them first.
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VIT_MAE_TINY_DIR as FIXTURE_DIR } from "./testing.js";

const MAE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
const CORE_DIR = join(MAE_DIR, "..", "core");
/** mae and the workspace packages it needs, as tarballs (a registry would serve the others). */
const PACKED = [CORE_DIR, ...["metrics", "tokenizer", "data", "train"].map((p) => join(MAE_DIR, "..", p)), MAE_DIR];
const enabled = process.env.LM4LV_STANDALONE_TEST === "1" || !!process.env.CI;

const SCRIPT = `import sharp from "sharp";
import { initBackend, writeImage } from "@lm4lv/core";
import { ViTMAE } from "@lm4lv/mae";
await sharp({ create: { width: 60, height: 45, channels: 3, background: { r: 200, g: 80, b: 30 } } }).png().toFile("in.png");
await initBackend(); const mae = ViTMAE.fromPretrained("model"); const [img] = await mae.reconstruct(["in.png"]); await writeImage("out.png", img);
`;

describe.skipIf(!enabled)("standalone install from packed tarballs", () => {
  it("npm installs the mae tarball (with its workspace dependencies) and a five-line script reconstructs an image", () => {
    for (const d of PACKED) {
      if (!existsSync(join(d, "dist", "index.js"))) throw new Error(`${join(d, "dist")}: not built (run pnpm build first)`);
    }
    const tmp = mkdtempSync(join(tmpdir(), "mae-standalone-"));
    try {
      const packs = join(tmp, "packs");
      const app = join(tmp, "app");
      for (const d of PACKED) execFileSync("pnpm", ["pack", "--pack-destination", packs], { cwd: d, stdio: "pipe" });
      const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).sort();
      expect(tarballs).toEqual(["core", "data", "mae", "metrics", "tokenizer", "train"].map((p) => `lm4lv-${p}-0.1.0.tgz`));

      cpSync(FIXTURE_DIR, join(app, "model"), { recursive: true });
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "mae-standalone-check", private: true, type: "module" }));
      // --ignore-scripts: tfjs-node's install script would download libtensorflow; core falls back to wasm.
      execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", ...tarballs.map((t) => join(packs, t))], { cwd: app, stdio: "pipe" });
      // mae's dependency on @lm4lv/core was satisfied by the local tarball, not the registry
      const lock = JSON.parse(execFileSync("npm", ["ls", "--all", "--json", "@lm4lv/core"], { cwd: app, encoding: "utf8" }));
      expect(lock.dependencies["@lm4lv/mae"].dependencies["@lm4lv/core"].version).toBe("0.1.0");
      expect(lock.dependencies["@lm4lv/core"].resolved).toMatch(/^file:/);

      writeFileSync(join(app, "demo.mjs"), SCRIPT);
      expect(SCRIPT.trim().split("\n")).toHaveLength(5);
      execFileSync(process.execPath, ["demo.mjs"], { cwd: app, stdio: "pipe" });
      const meta = execFileSync(process.execPath, ["-e", 'import("sharp").then(async (s) => { const m = await s.default("out.png").metadata(); console.log(JSON.stringify([m.format, m.width, m.height])); })'], { cwd: app, encoding: "utf8" });
      expect(JSON.parse(meta)).toEqual(["png", 32, 32]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 600_000);
});
