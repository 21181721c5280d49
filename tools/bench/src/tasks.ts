/**
 * pnpm bench:tasks — the paper's table at small scale (→ docs/results.md, docs/results/<task>.png).
 *
 * For every task, on the held-out test photos (assets/test-images, degraded with a fixed seed):
 * PSNR/SSIM (spec §9, crop 4) of the degraded input, the MAE's reconstruction of it, LM4LV with the
 * text-pretrained frozen LM (free-running greedy generation on ONNX Runtime when it loads), the same
 * fed the true clean features (teacher forcing), LM4LV with a random frozen LM of the same shape, with
 * the LM trained without inserted repeats (when present), and the adapters alone. Also the induction
 * test of each LM and, per task, the copy score on LM4LV sequences (output k−1 → input k).
 *
 *   node tools/bench/dist/tasks.js [--tasks denoise,deblur,...] [--models models/lm4lv-tiny] [--ablations .cache/ablations] [--out docs] [--images DIR]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { initBackend, writeImage, type RgbImage } from "@lm4lv/core";
import { FolderPairDataset, TASK_NAMES } from "@lm4lv/data";
import { psnr, ssim } from "@lm4lv/metrics";
import { LM4LV, restoreAdaptersOnly, lm4lvImageSpans } from "@lm4lv/pipeline";
import { withOrtEngine, ortAvailable, inductionTest, lm4lvCopyScores } from "@lm4lv/onnx";
import type { LlamaForCausalLM } from "@lm4lv/llm";
import { imageGrid } from "@lm4lv/train";
import { commaList, isMain, parseCommandLine, runScript, usageText } from "./options.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

interface Score { psnr: number; ssim: number }
type Variant = "input" | "mae" | "lm4lv" | "teacherForced" | "randomLm" | "norepeatLm" | "adaptersOnly";
const LABELS: Record<Variant, string> = {
  input: "degraded input",
  mae: "MAE reconstruction of input",
  lm4lv: "LM4LV, text-pretrained frozen LM",
  teacherForced: "LM4LV fed the true clean features (teacher forcing; diagnostic, not a restoration)",
  randomLm: "LM4LV, random frozen LM (ablation)",
  norepeatLm: "LM4LV, text LM trained without the inserted repeats (ablation)",
  adaptersOnly: "adapters alone, no LM (ablation)",
};

/** The options of `pnpm bench:tasks`: the one place each default lives. */
export const TASKS_OPTIONS = z.object({
  tasks: commaList()
    .pipe(z.array(z.enum(TASK_NAMES, `expected task names (${TASK_NAMES.join(", ")})`)))
    .default(["identity", "denoise", "denoise25", "saltpepper", "deblur", "derain", "hflip", "rot90"])
    .describe("tasks (checkpoint folders of --models), comma-separated; the default is every shipped task"),
  models: z.string().default(join(ROOT, "models/lm4lv-tiny")).describe("one LM4LV checkpoint per task"),
  ablations: z.string().default(join(ROOT, ".cache/ablations")).describe("<task>/{random-lm,norepeat-lm,adapters-only} checkpoints"),
  out: z.string().default(join(ROOT, "docs")).describe("where results-table.md and results/<task>.png go"),
  images: z.string().default(join(ROOT, "assets/test-images")).describe("the clean test photos"),
});

export type TasksOptions = z.output<typeof TASKS_OPTIONS>;

const USAGE = usageText("usage: pnpm bench:tasks [options]", TASKS_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseTasksArgs(argv: string[]): TasksOptions | undefined {
  const { options, help } = parseCommandLine(argv, TASKS_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseTasksArgs(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const { tasks } = options;
  const modelsDir = resolve(options.models);
  const ablDir = resolve(options.ablations);
  const outDir = resolve(options.out);
  const imagesDir = resolve(options.images);
  mkdirSync(join(outDir, "results"), { recursive: true });
  const backend = await initBackend();
  const sections: string[] = [];
  const summary: string[] = [];
  const inductionRows: string[] = [];
  const copyRows: string[] = [];
  const useOrt = await ortAvailable();
  const measuredLms = new Set<string>();
  const induction = async (label: string, m: LM4LV) => {
    if (measuredLms.has(m.models.llmDir)) return;
    measuredLms.add(m.models.llmDir);
    // |R| = 50: the standard test; |R| = offset of the LM4LV layout (input visual token k → output token k)
    const [input, output] = lm4lvImageSpans(m);
    const offset = output.start - input.start;
    for (const length of [50, offset]) {
      const r = await inductionTest(m.models.lm as LlamaForCausalLM, { length, bosId: m.models.tokenizer.bosId ?? 1, firstToken: 3, reservedTop: 2 });
      inductionRows.push(`| ${label} | ${length} | ${r.firstCopyLoss.toFixed(2)} | ${r.secondCopyLoss.toFixed(2)} | ${r.uniformLoss.toFixed(2)} | L${r.best.layer}H${r.best.head} ${r.best.score.toFixed(3)} |`);
    }
  };
  for (const task of tasks) {
    const main = join(modelsDir, task);
    if (!existsSync(join(main, "lm4lv.json"))) {
      console.error(`skipping ${task}: no checkpoint in ${main}`);
      continue;
    }
    const t0 = performance.now();
    const ort = async (m: LM4LV, dir: string) => (useOrt ? (await withOrtEngine(m, dir)).model : m);
    const model = await LM4LV.fromCheckpoint(main);
    const gen = await ort(model, main);
    const loadAbl = async (name: string) => (existsSync(join(ablDir, task, name, "lm4lv.json")) ? ort(await LM4LV.fromCheckpoint(join(ablDir, task, name)), join(ablDir, task, name)) : undefined);
    const random = await loadAbl("random-lm");
    const norepeat = await loadAbl("norepeat-lm");
    await induction("text LM (the embedded default)", model);
    if (random) await induction("random frozen LM (ablation)", random);
    if (norepeat) await induction("text LM without inserted repeats (ablation)", norepeat);
    const alone = existsSync(join(ablDir, task, "adapters-only", "lm4lv.json")) ? LM4LV.fromCheckpointWithModels(join(ablDir, task, "adapters-only"), model.models) : undefined;
    const info = JSON.parse(readFileSync(join(main, "lm4lv.json"), "utf8")) as { extra?: { params?: Record<string, number> | null } };
    const ds = new FolderPairDataset(imagesDir, task, { size: model.imageSize, seed: 1000, params: info.extra?.params ?? undefined });
    const sums: Partial<Record<Variant, Score>> = {};
    const add = (v: Variant, hq: RgbImage, img: RgbImage) => {
      const s = sums[v] ?? { psnr: 0, ssim: 0 };
      s.psnr += psnr(hq, img, { cropBorder: 4 });
      s.ssim += ssim(hq, img, { cropBorder: 4 });
      sums[v] = s;
    };
    const rows: RgbImage[][] = [];
    for (let i = 0; i < ds.length; i++) {
      const { lq, hq } = await ds.get(i, 0);
      const row: RgbImage[] = [lq];
      add("input", hq, lq);
      const rec = (await model.reconstruct([lq]))[0];
      add("mae", hq, rec);
      row.push(rec);
      const r = await gen.restore(lq);
      r.features.dispose();
      add("lm4lv", hq, r.image);
      row.push(r.image);
      add("teacherForced", hq, await model.teacherForced(lq, hq));
      for (const [v, m] of [["randomLm", random], ["norepeatLm", norepeat]] as const) {
        if (!m) continue;
        const rr = await m.restore(lq);
        rr.features.dispose();
        add(v, hq, rr.image);
        row.push(rr.image);
      }
      if (alone) {
        const ra = await restoreAdaptersOnly(alone, lq);
        add("adaptersOnly", hq, ra);
        row.push(ra);
      }
      row.push(hq);
      if (i < 4) rows.push(row);
      process.stderr.write(`\r${task}: ${i + 1}/${ds.length}`);
    }
    process.stderr.write("\n");
    const n = ds.length;
    const copyPairs = [];
    for (let i = 0; i < Math.min(4, ds.length); i++) copyPairs.push(await ds.get(i, 0));
    const copy = await lm4lvCopyScores(model, copyPairs);
    copyRows.push(`| ${task} | L${copy.best.layer}H${copy.best.head} ${copy.best.score.toFixed(3)} |`);
    const picture = join(outDir, "results", `${task}.png`);
    await writeImage(picture, imageGrid(rows));
    const cols = ["input", "mae", "lm4lv", "teacherForced", ...(random ? ["randomLm"] : []), ...(norepeat ? ["norepeatLm"] : []), ...(alone ? ["adaptersOnly"] : [])] as Variant[];
    const lines = [`### ${task}`, "", `| ${n} test images | PSNR (dB) | SSIM |`, "| --- | --- | --- |"];
    for (const v of cols) lines.push(`| ${LABELS[v]} | ${(sums[v]!.psnr / n).toFixed(2)} | ${(sums[v]!.ssim / n).toFixed(4)} |`);
    const gain = sums.lm4lv!.psnr / n - sums.input!.psnr / n;
    lines.push("", `![${task}](results/${task}.png)`, "", `Columns: degraded input | MAE(input) | LM4LV${random ? " | random LM" : ""}${norepeat ? " | LM without repeats" : ""}${alone ? " | adapters alone" : ""} | clean target. ${((performance.now() - t0) / 1000).toFixed(0)} s (generation on ${useOrt ? "onnxruntime" : `tfjs-${backend}`}).`, "");
    sections.push(lines.join("\n"));
    const f = (v: Variant, k: keyof Score) => (sums[v] ? (sums[v]![k] / n).toFixed(k === "psnr" ? 2 : 4) : "—");
    summary.push(`| ${task} | ${f("input", "psnr")} / ${f("input", "ssim")} | ${f("mae", "psnr")} / ${f("mae", "ssim")} | ${f("lm4lv", "psnr")} / ${f("lm4lv", "ssim")} | ${f("randomLm", "psnr")} / ${f("randomLm", "ssim")} | ${f("norepeatLm", "psnr")} / ${f("norepeatLm", "ssim")} | ${f("adaptersOnly", "psnr")} / ${f("adaptersOnly", "ssim")} | ${gain >= 0 ? "+" : ""}${gain.toFixed(2)} | ${f("teacherForced", "psnr")} / ${f("teacherForced", "ssim")} |`);
    console.log(summary[summary.length - 1]);
  }
  const md = [
    "<!-- generated by `pnpm bench:tasks`; docs/results.md holds this table with its reading -->",
    "## Summary (PSNR dB / SSIM, mean over the test photos)",
    "",
    "| task | degraded input | MAE(input) | LM4LV (text LM) | LM4LV (random LM) | LM4LV (LM without repeats) | adapters alone | LM4LV gain over input (dB) | LM4LV teacher-forced (diagnostic) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...summary,
    "",
    "## In-context copying of each frozen LM (induction test: [BOS] + R + R, R uniform random tokens, 10 sequences)",
    "",
    "|R| = 50 is the standard test; |R| = the LM4LV layout's offset between input visual token k and output visual token k.",
    "",
    "| LM | \\|R\\| | loss on the first copy (nats) | loss on the second copy | ln V | best head: mean attention i → i − (\\|R\\| − 1) |",
    "| --- | --- | --- | --- | --- | --- |",
    ...inductionRows,
    "",
    "## Copy attention on LM4LV sequences (text LM; output position k − 1 → input visual token k, 4 test pairs)",
    "",
    "| task | best head: mean attention |",
    "| --- | --- |",
    ...copyRows,
    "",
    ...sections,
  ].join("\n");
  writeFileSync(join(outDir, "results-table.md"), md + "\n");
  console.log(`→ ${join(outDir, "results-table.md")}`);
}

if (isMain("tasks")) runScript(main, USAGE);
