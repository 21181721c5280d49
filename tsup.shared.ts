import { defineConfig } from "tsup";

/** The one tsup configuration of every package, app and tool: ESM for Node 20 (+ d.ts for libraries). */
export function tsupConfig(entry: string[], opts: { dts?: boolean } = {}) {
  return defineConfig({
    entry,
    format: ["esm"],
    dts: opts.dts ?? true,
    clean: true,
    sourcemap: true,
    target: "node20",
  });
}
