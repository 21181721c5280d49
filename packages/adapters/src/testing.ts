/**
 * Test helpers of @lm4lv/adapters (the `@lm4lv/adapters/testing` subpath, for the workspace's tests;
 * not part of the public API): seeded random image features and an LM4LV training sample built by hand.
 */
import * as tf from "@tensorflow/tfjs";
import { Mulberry32 } from "@lm4lv/core";
import type { SequenceSpan } from "./assemble.js";
import type { VisionTarget } from "./loss.js";

/** Random normal-ish features [1+N, Dv] per image, seeded (sum of uniforms, scale ~1). */
export function randomFeatures(numImages: number, rows: number, width: number, seed: number): tf.Tensor2D[] {
  const rng = new Mulberry32(seed);
  return Array.from({ length: numImages }, () => {
    const data = new Float32Array(rows * width);
    for (let i = 0; i < data.length; i++) data[i] = (rng.next() + rng.next() + rng.next() - 1.5) * 2;
    return tf.tensor2d(data, [rows, width]);
  });
}

export interface HandBuilt {
  inputIds: number[];
  labels: number[];
  spans: SequenceSpan[];
  visionTargets: VisionTarget[];
}

/**
 * An LM4LV training sample built by hand, laid out like buildSequence's output:
 *   BOS h h [N × LQ] h [K × task] a <Img-ish> [N × HQ] c c
 * with labels on the response's text ("<Img>" piece and closing text), none elsewhere,
 * and vision targets HQ.start−1+i → token i. `text` shifts the text ids (samples differ).
 */
export function handBuiltSample(N: number, K: number, text = 0): HandBuilt {
  const inputIds: number[] = [];
  const labels: number[] = [];
  const spans: SequenceSpan[] = [];
  const push = (ids: number[], loss: boolean) => {
    for (const id of ids) {
      inputIds.push(id);
      labels.push(loss ? id : -100);
    }
  };
  push([1, 35 + text, 36 + text], false); // BOS "### Human:" "<Img>"
  spans.push({ kind: "image", imageIndex: 0, start: inputIds.length, length: N });
  push(new Array(N).fill(0), false);
  push([40 + text], false); // "</Img> "
  spans.push({ kind: "task", start: inputIds.length, length: K });
  push(new Array(K).fill(0), false);
  push([50 + text], false); // "\n### Assistant: "
  push([60 + text, 61], true); // "<Img>"
  const hq = inputIds.length;
  spans.push({ kind: "image", imageIndex: 1, start: hq, length: N });
  push(new Array(N).fill(0), false);
  push([70 + text, 71, 2], true); // "</Img>" "\n###"
  const visionTargets = Array.from({ length: N }, (_, i) => ({ position: hq - 1 + i, imageIndex: 1, tokenIndex: i }));
  return { inputIds, labels, spans, visionTargets };
}
