import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/run.ts", "src/tasks.ts", "src/random-lm.ts", "src/examples.ts"],
  format: ["esm"],
  clean: true,
  sourcemap: true,
  target: "node20",
});
