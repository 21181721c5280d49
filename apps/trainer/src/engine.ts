/**
 * The gradient engine of `pnpm train mae|lm|lm4lv`: `--engine ort` (ONNX Runtime training graphs of
 * @lm4lv/onnx, the default when onnxruntime-node loads) or `--engine tfjs` (tfjs autodiff).
 * @lm4lv/onnx is imported only when ORT is chosen.
 */
import { ortAvailable } from "@lm4lv/onnx/available";

export type EngineName = "ort" | "tfjs";

/** `--engine` as given (checked by the command's schema), or the default. */
export async function chooseEngine(flag: EngineName | undefined): Promise<EngineName> {
  const loads = await ortAvailable();
  if (flag === "ort" && !loads) throw new Error("--engine ort: onnxruntime-node does not load on this machine");
  return flag ?? (loads ? "ort" : "tfjs");
}
