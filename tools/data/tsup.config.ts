import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/photos.ts", "src/test-images.ts", "src/text.ts", "src/bundle.ts"],
  format: ["esm"],
  clean: true,
  sourcemap: true,
  target: "node20",
});
