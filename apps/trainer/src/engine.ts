/**
 * The gradient engine of `pnpm train mae|lm`: `--engine ort` (ONNX Runtime training graphs of
 * @lm4lv/onnx, the default when onnxruntime-node loads) or `--engine tfjs` (tfjs autodiff).
 * @lm4lv/onnx is imported only when ORT is chosen.
 */
import { ortAvailable } from "@lm4lv/pipeline";

export type EngineName = "ort" | "tfjs";

/** Checks `--engine` and picks the default. */
export async function chooseEngine(flag: unknown): Promise<EngineName> {
  if (flag !== undefined && flag !== "ort" && flag !== "tfjs") throw new Error(`--engine must be ort or tfjs, got ${JSON.stringify(flag)}`);
  const loads = await ortAvailable();
  if (flag === "ort" && !loads) throw new Error("--engine ort: onnxruntime-node does not load on this machine");
  return (flag as EngineName | undefined) ?? (loads ? "ort" : "tfjs");
}

/** "a", "a or b", "a, b or c". */
export function oneOf(values: readonly string[]): string {
  return values.length < 2 ? values.join("") : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
}

/** Throws `--<flag> must be …, got "v"` unless `value` is one of `allowed`. */
export function checkChoice(flag: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(String(value))) throw new Error(`--${flag} must be ${oneOf(allowed)}, got "${String(value)}"`);
}
