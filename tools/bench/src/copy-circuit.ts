/**
 * How many dimensions can the frozen LM's copy path carry? The heads that copy on LM4LV sequences
 * (mean attention from output visual position k − 1 to input visual token k ≥ a threshold,
 * `lm4lvCopyScores`) move a token by their value/output ("OV") map: the attended token's residual
 * state x goes in through the layer's RMSNorm gain g, out as W_O,h · W_V,h · diag(g) · x̂. A head of
 * width head_dim passes at most head_dim directions; how many it passes with weight is the spectrum
 * of that d×d map. The copy heads of one layer read the same source position, so their OV maps add;
 * the heads of different layers read different residual states, so the all-layer row is an upper
 * bound. Compare the counts with feature-subspace, which gives the PSNR of an MAE feature kept in
 * its top-k principal directions.
 *
 * How many directions does the text objective need? `--ranks` cuts each layer's summed copy map
 * to its best rank-r approximation (only the copy heads' value rows change) and measures copying
 * of random tokens at the LM4LV distance (the induction test, [BOS] + R + R, |R| = that distance):
 * the smallest r that keeps the second-copy loss is all the text task asks of the copy path.
 *
 *   node tools/bench/dist/copy-circuit.js [--checkpoint models/lm4lv-tiny/identity] [--val DIR] [--count 8] [--threshold 0.4] [--ranks 4,8,12,16]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import * as tf from "@tensorflow/tfjs";
import { initBackend, positiveInt } from "@lm4lv/core";
import { LM_ADDED_TOKENS, LlamaForCausalLM } from "@lm4lv/llm";
import { LM4LV, lm4lvImageSpans } from "@lm4lv/pipeline";
import { inductionTest, lm4lvCopyScores } from "@lm4lv/onnx";
import { sampleImages } from "./images.js";
import { matMul, productSingularValues, symmetricEigen, transpose } from "./linalg.js";
import { isMain, numeric, parseCommandLine, runScript, usageText } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface Spectrum {
  /** Singular values, decreasing. */
  values: number[];
  /** Count of singular values ≥ 10 % of the largest. */
  above10: number;
  /** Count of singular values ≥ 1 % of the largest. */
  above1: number;
  /** Participation ratio of the squared singular values, (Σσ²)² / Σσ⁴. */
  participation: number;
}

export function spectrum(values: number[]): Spectrum {
  const top = values[0] ?? 0;
  const s2 = values.reduce((s, v) => s + v * v, 0);
  const s4 = values.reduce((s, v) => s + v ** 4, 0);
  return { values, above10: values.filter((v) => v >= 0.1 * top).length, above1: values.filter((v) => v >= 0.01 * top).length, participation: s4 > 0 ? (s2 * s2) / s4 : 0 };
}

/** One head's OV factors: O (d × hd) and B = W_V,kv · diag(g) (hd × d), float64 row-major. */
export function headFactors(lm: LlamaForCausalLM, layer: number, head: number): { o: Float64Array; b: Float64Array } {
  const { num_attention_heads: nh, num_key_value_heads: nkv } = lm.config;
  const d = lm.hiddenSize, hd = lm.config.head_dim;
  const p = lm.namedParameters();
  const get = (name: string, shape: number[]) => {
    const t = p.get(`model.layers.${layer}.${name}`);
    if (!t) throw new Error(`copy-circuit: the LM has no parameter model.layers.${layer}.${name}`);
    if (t.shape.join() !== shape.join()) throw new Error(`copy-circuit: model.layers.${layer}.${name} has shape [${t.shape}], expected [${shape}]`);
    return Float64Array.from(t.dataSync());
  };
  const g = get("input_layernorm.weight", [d]);
  const wv = get("self_attn.v_proj.weight", [nkv * hd, d]); // HF layout [out, in]
  const wo = get("self_attn.o_proj.weight", [d, nh * hd]);
  const kv = Math.floor(head / (nh / nkv));
  const o = new Float64Array(d * hd), b = new Float64Array(hd * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < hd; j++) o[i * hd + j] = wo[i * nh * hd + head * hd + j];
  for (let j = 0; j < hd; j++) for (let i = 0; i < d; i++) b[j * d + i] = wv[(kv * hd + j) * d + i] * g[i];
  return { o, b };
}

/** The factors of Σ_h O_h B_h over `heads` (each [layer, head]): O = [O_1 … O_c] (d × r) and B = [B_1; …; B_c] (r × d), r = c·head_dim. */
function stackedFactors(lm: LlamaForCausalLM, heads: readonly (readonly [number, number])[]): { o: Float64Array; b: Float64Array; r: number } {
  const d = lm.hiddenSize, hd = lm.config.head_dim, r = hd * heads.length;
  const o = new Float64Array(d * r), b = new Float64Array(r * d);
  heads.forEach(([layer, head], c) => {
    const f = headFactors(lm, layer, head);
    for (let i = 0; i < d; i++) for (let j = 0; j < hd; j++) o[i * r + c * hd + j] = f.o[i * hd + j];
    b.set(f.b, c * hd * d);
  });
  return { o, b, r };
}

/** Spectrum of Σ_h O_h B_h over `heads` (each [layer, head]), as the product [O_1 … O_c] · [B_1; …; B_c]. */
export function summedOvSpectrum(lm: LlamaForCausalLM, heads: readonly [number, number][]): Spectrum {
  const { o, b, r } = stackedFactors(lm, heads);
  return spectrum(productSingularValues(o, b, lm.hiddenSize, r, lm.hiddenSize));
}

/**
 * New value rows for one layer's copy heads (they read the same source, so their OV maps add) that
 * make the summed map Σ_h O_h·B_h its best rank-r approximation (Eckart–Young); O_h, the other heads
 * and the other weights are unchanged. With O = [O_1 … O_c], B = [B_1; …; B_c] (R = c·head_dim rows),
 * B·Bᵀ = L·Lᵀ and W the eigenvectors of Lᵀ·OᵀO·L, the map O·B = (O·L)·(L⁺·B) has singular vectors
 * O·L·W (left) and Wᵀ·L⁺·B (right), so the cut map is O·P·B with P = L·W_r·W_rᵀ·L⁺ (R×R). Returns
 * each head's v_proj rows (head_dim × hidden, HF layout [out, in], float64): P·B with the RMSNorm gain
 * divided back out. Needs one key/value head per head (no grouped-query sharing of value rows).
 */
export function truncatedValueRows(lm: LlamaForCausalLM, layer: number, heads: readonly number[], rank: number): Float64Array[] {
  const { num_attention_heads: nh, num_key_value_heads: nkv } = lm.config;
  if (nkv !== nh) throw new Error(`copy-circuit: --ranks needs one key/value head per head (the LM has ${nh} heads, ${nkv} key/value heads)`);
  const d = lm.hiddenSize, hd = lm.config.head_dim;
  const { o, b, r: R } = stackedFactors(lm, heads.map((h) => [layer, h] as const));
  // B·Bᵀ = L·Lᵀ, L = V·diag(√λ); L⁺ = diag(1/√λ)·Vᵀ over the non-negligible λ
  const { values, vectors } = symmetricEigen(matMul(b, transpose(b, R, d), R, d, R), R);
  const floor = Math.max(values[0], 0) * 1e-12;
  const l = new Float64Array(R * R), lPinv = new Float64Array(R * R);
  for (let c = 0; c < R; c++) {
    if (values[c] <= floor) continue;
    const s = Math.sqrt(values[c]);
    for (let i = 0; i < R; i++) {
      l[i * R + c] = vectors[c][i] * s;
      lPinv[c * R + i] = vectors[c][i] / s;
    }
  }
  const inner = matMul(transpose(l, R, R), matMul(matMul(transpose(o, d, R), o, R, d, R), l, R, R, R), R, R, R);
  const w = symmetricEigen(inner, R).vectors.slice(0, Math.min(rank, R)); // top-r right factors
  const ww = new Float64Array(R * R);
  for (const v of w) for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) ww[i * R + j] += v[i] * v[j];
  const pb = matMul(matMul(matMul(l, ww, R, R, R), lPinv, R, R, R), b, R, R, d); // P·B, R × d
  const g = lm.readParameter(`model.layers.${layer}.input_layernorm.weight`).data;
  return heads.map((_, c) => {
    const rows = pb.slice(c * hd * d, (c + 1) * hd * d);
    for (let j = 0; j < hd; j++) for (let i = 0; i < d; i++) rows[j * d + i] = g[i] === 0 ? 0 : rows[j * d + i] / g[i];
    return rows;
  });
}

/**
 * Second-copy loss of the induction test at `length` with each layer's copy heads cut to rank r,
 * for every r of `ranks` (ascending), then the uncut LM; the LM's weights are restored after each.
 */
export async function rankSweep(lm: LlamaForCausalLM, copyHeads: ReadonlyMap<number, readonly number[]>, ranks: readonly number[], length: number): Promise<{ rank: number | "all"; secondCopyLoss: number }[]> {
  const hd = lm.config.head_dim;
  const names = [...copyHeads.keys()].map((l) => `model.layers.${l}.self_attn.v_proj.weight`);
  const vars = lm.trainableParameters((n) => names.includes(n));
  const original = new Map(names.map((n) => [n, vars[n].clone()]));
  const induction = (rank: number | "all") => inductionTest(lm, { length, bosId: lm.config.bos_token_id ?? 1, firstToken: 3, reservedTop: LM_ADDED_TOKENS.length }).then((r) => ({ rank, secondCopyLoss: r.secondCopyLoss }));
  const out: { rank: number | "all"; secondCopyLoss: number }[] = [];
  try {
    for (const rank of ranks) {
      for (const [layer, heads] of copyHeads) {
        const name = `model.layers.${layer}.self_attn.v_proj.weight`;
        const next = original.get(name)!.arraySync() as number[][];
        truncatedValueRows(lm, layer, heads, rank).forEach((rows, c) => {
          for (let j = 0; j < hd; j++) next[heads[c] * hd + j] = Array.from(rows.subarray(j * lm.hiddenSize, (j + 1) * lm.hiddenSize));
        });
        tf.tidy(() => vars[name].assign(tf.tensor2d(next)));
      }
      out.push(await induction(rank));
      for (const n of names) vars[n].assign(original.get(n)!);
    }
    out.push(await induction("all"));
  } finally {
    for (const n of names) vars[n].assign(original.get(n)!);
    original.forEach((t) => t.dispose());
  }
  return out;
}

/** The options of copy-circuit: the one place each default lives. */
export const COPY_CIRCUIT_OPTIONS = z.object({
  checkpoint: z.string().default(join(ROOT, "models/lm4lv-tiny/identity")).describe("an LM4LV checkpoint (its LM is analysed)"),
  val: z.string().default(join(ROOT, ".cache/data/valsub")).describe("crops whose LM4LV sequences locate the copy heads"),
  count: positiveInt().default(8).describe("crops used (each as both input and output image)"),
  threshold: z.preprocess(numeric, z.number().gt(0).lte(1)).default(0.4).describe("copy attention that makes a head a copy head"),
  ranks: z
    .string()
    .default("")
    .transform((s, ctx) => {
      const r = s ? s.split(",").map(Number) : [];
      if (r.some((x) => !Number.isInteger(x) || x < 1)) ctx.addIssue({ code: "custom", message: `expected comma-separated positive integers, got "${s}"` });
      return r.sort((a, b) => a - b);
    })
    .describe("cut each layer's copy map to these ranks and measure copying at the LM4LV distance (e.g. 4,8,12,16)"),
});

export type CopyCircuitOptions = z.output<typeof COPY_CIRCUIT_OPTIONS>;

const USAGE = usageText("usage: node tools/bench/dist/copy-circuit.js [options]", COPY_CIRCUIT_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseCopyCircuitArgs(argv: string[]): CopyCircuitOptions | undefined {
  const { options, help } = parseCommandLine(argv, COPY_CIRCUIT_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseCopyCircuitArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  await initBackend();
  const ckpt = resolve(options.checkpoint);
  const model = await LM4LV.fromCheckpoint(ckpt);
  const lm = model.models.lm;
  if (!(lm instanceof LlamaForCausalLM)) throw new Error("copy-circuit needs the tfjs LM (its weights)");
  const { images } = await sampleImages(resolve(options.val), options.count, { size: model.imageSize });
  const scores = await lm4lvCopyScores(model, images.map((img) => ({ lq: img, hq: img })));
  const hd = lm.config.head_dim;
  console.log(`${ckpt}: LM ${lm.config.num_hidden_layers} layers × ${lm.hiddenSize}, ${lm.config.num_attention_heads} heads of ${hd}; copy attention (output k − 1 → input k) on ${images.length} crops of ${resolve(options.val)}, copy heads ≥ ${options.threshold}`);
  console.log("| layer | copy heads (attention) | per head: σ ≥ 10 % / ≥ 1 % of max, participation | the layer's copy heads summed: σ ≥ 10 % / ≥ 1 %, participation |\n| --- | --- | --- | --- |");
  const all: [number, number][] = [];
  const copyHeads = new Map<number, number[]>();
  scores.heads.forEach((row, layer) => {
    const heads = row.map((s, h) => [h, s] as const).filter(([, s]) => s >= options.threshold).sort((a, b) => b[1] - a[1]);
    if (!heads.length) return console.log(`| ${layer} | none (best H${row.indexOf(Math.max(...row))} ${Math.max(...row).toFixed(3)}) | — | — |`);
    copyHeads.set(layer, heads.map(([h]) => h));
    const per = heads.map(([h]) => summedOvSpectrum(lm, [[layer, h]]));
    const sum = summedOvSpectrum(lm, heads.map(([h]) => [layer, h]));
    heads.forEach(([h]) => all.push([layer, h]));
    const mean = (f: (s: Spectrum) => number) => (per.reduce((t, s) => t + f(s), 0) / per.length).toFixed(1);
    console.log(`| ${layer} | ${heads.map(([h, s]) => `H${h} ${s.toFixed(2)}`).join(", ")} | ${mean((s) => s.above10)} / ${mean((s) => s.above1)}, ${mean((s) => s.participation)} (of ${hd}) | ${sum.above10} / ${sum.above1}, ${sum.participation.toFixed(1)} (of ${Math.min(hd * heads.length, lm.hiddenSize)}) |`);
  });
  if (all.length) {
    const s = summedOvSpectrum(lm, all);
    console.log(`| all | ${all.length} heads (upper bound: different layers read different states) | — | ${s.above10} / ${s.above1}, ${s.participation.toFixed(1)} (of ${Math.min(hd * all.length, lm.hiddenSize)}) |`);
  }
  if (options.ranks.length && copyHeads.size) {
    const [inp, outp] = lm4lvImageSpans(model);
    const distance = outp.start - inp.start;
    console.log(`\ncopying random tokens at the LM4LV distance (induction test, |R| = ${distance}, 10 sequences) with each layer's copy map cut to rank r:`);
    console.log("| rank r per layer | second-copy loss (nats) |\n| --- | --- |");
    for (const r of await rankSweep(lm, copyHeads, options.ranks, distance)) console.log(`| ${r.rank === "all" ? "uncut" : r.rank} | ${r.secondCopyLoss.toFixed(3)} |`);
  }
  tf.disposeVariables();
}

if (isMain("copy-circuit")) runScript(main, USAGE);
