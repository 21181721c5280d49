import { defineConfig } from "vitest/config";

/** The one vitest configuration every package and app uses (tests beside the code). */
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    passWithNoTests: false,
  },
});
