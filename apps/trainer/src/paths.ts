import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (apps/trainer/dist/*.js → ../../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
