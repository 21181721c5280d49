/**
 * Helpers shared by the data scripts: command-line options (zod schemas parsed by core's
 * parseCommandLine), a seeded RNG, the repo-root cache folder, Debian package
 * download/extract with `apt-get download` + `dpkg-deb -x`, and a reader for machine-readable
 * (DEP-5) `/usr/share/doc/<pkg>/copyright` files.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { Mulberry32, numeric } from "@lm4lv/core";

/** A seeded generator of floats in [0, 1): core's Mulberry32. */
export function makeRng(seed: number): () => number {
  const rng = new Mulberry32(seed >>> 0);
  return () => rng.next();
}

/** Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The monorepo root: the nearest folder above `from` holding pnpm-workspace.yaml. */
export function repoRoot(from = process.cwd()): string {
  let dir = resolve(from);
  while (!existsSync(join(dir, "pnpm-workspace.yaml"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`${from}: not inside the lm4lv monorepo (no pnpm-workspace.yaml above it)`);
    dir = up;
  }
  return dir;
}

// ---- command-line options -------------------------------------------------------------------------

// Parsed by core's parseCommandLine (zod schema, kebab-case flags, --help from the schema).
export { numeric, parseCommandLine, usageText, UsageError } from "@lm4lv/core";

/** A fraction in [0, 1] (e.g. --val-fraction). */
export const fraction = () => z.preprocess(numeric, z.number("expected a number in [0, 1]").min(0, "expected a number in [0, 1]").max(1, "expected a number in [0, 1]"));

/** The data cache folder's default: <repo>/.cache/data. */
export const cacheOption = () => z.string().default(() => join(repoRoot(), ".cache/data")).describe("data cache folder");

export { isMain, runScript } from "@lm4lv/core";

/** The candidate version apt would download, or undefined when apt knows no such package. */
export function aptCandidate(pkg: string): string | undefined {
  let out: string;
  try {
    out = execFileSync("apt-cache", ["policy", pkg], { encoding: "utf8" });
  } catch {
    return undefined;
  }
  const m = /Candidate:\s*(\S+)/.exec(out);
  return m && m[1] !== "(none)" ? m[1] : undefined;
}

/**
 * Download `pkg`'s .deb into `<cache>/debs` (once) and extract it into `<cache>/pkgs/<pkg>` (once).
 * Returns the extraction root.
 */
export function fetchDebianPackage(pkg: string, cache: string): string {
  const debs = join(cache, "debs");
  const root = join(cache, "pkgs", pkg);
  if (existsSync(join(root, ".extracted"))) return root;
  mkdirSync(debs, { recursive: true });
  const findDeb = () => readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"));
  if (!findDeb()) {
    try {
      execFileSync("apt-get", ["download", pkg], { cwd: debs, stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      const stderr = String((e as { stderr?: Buffer }).stderr ?? "");
      throw new Error(`apt-get download ${pkg} failed (run 'apt-get update' once first?): ${stderr.trim()}`);
    }
  }
  const deb = findDeb();
  if (!deb) throw new Error(`apt-get download ${pkg}: no ${pkg}_*.deb appeared in ${debs}`);
  const tmp = `${root}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync("dpkg-deb", ["-x", join(debs, deb), tmp]);
  execFileSync("touch", [join(tmp, ".extracted")]);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(dirname(root), { recursive: true });
  renameSync(tmp, root);
  return root;
}

/** The .deb file name that `fetchDebianPackage` used (for the manifest). */
export function debFileName(pkg: string, cache: string): string | undefined {
  const debs = join(cache, "debs");
  return existsSync(debs) ? readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb")) : undefined;
}

interface Stanza {
  files: string[];
  copyright: string;
  license: string;
}

/** The `Files:` stanzas of a DEP-5 copyright file (continuation lines joined). */
export function parseCopyright(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = "";
    for (const line of block.split("\n")) {
      const m = /^([A-Za-z-]+):\s?(.*)$/.exec(line);
      if (m && !line.startsWith(" ")) {
        last = m[1].toLowerCase();
        fields.set(last, m[2].trim());
      } else if (last && /^\s/.test(line)) {
        fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      }
    }
    const files = fields.get("files");
    if (!files) continue;
    stanzas.push({
      files: files.split(/\s+/).filter(Boolean),
      copyright: (fields.get("copyright") ?? "").replace(/\s*\n\s*/g, "; "),
      license: (fields.get("license") ?? "").split("\n")[0].trim(),
    });
  }
  return stanzas;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export interface LicenceInfo {
  licence: string;
  copyright: string;
  /** The `Files:` pattern of the stanza that matched. */
  stanza: string;
}

/**
 * Licence of a file from its package's DEP-5 copyright file. `sourcePath` is the file's path in
 * the package's source tree (what the stanzas name, e.g. "nature/Aqua.jpg"), not where it is
 * installed. As DEP-5 says, `*` matches any run of characters (slashes too) and the last stanza
 * that matches wins.
 */
export function licenceOf(copyrightText: string, sourcePath: string): LicenceInfo {
  let found: LicenceInfo = { licence: "unknown", copyright: "", stanza: "" };
  for (const stanza of parseCopyright(copyrightText)) {
    const pattern = stanza.files.find((p) => globToRegExp(p).test(sourcePath));
    if (pattern) found = { licence: stanza.license, copyright: stanza.copyright, stanza: pattern };
  }
  return found;
}

/** `<root>/usr/share/doc/<pkg>/copyright` as text. */
export function readCopyright(root: string, pkg: string): string {
  const path = join(root, "usr/share/doc", pkg, "copyright");
  if (!existsSync(path)) throw new Error(`${pkg}: no usr/share/doc/${pkg}/copyright in the extracted package`);
  return readFileSync(path, "utf8");
}

/**
 * Normalise a document: Unicode NFC; typographic quotes and the non-breaking hyphen to ASCII
 * (em dashes stay); no-break spaces to spaces; transcript notes "(Applause.)" / "(Laughter.)"
 * dropped; runs of spaces/tabs to one space; lines trimmed; empty lines dropped (paragraphs end
 * with one "\n").
 */
export function clean(text: string): string {
  return text
    .normalize("NFC")
    .replace(/\r\n?/g, "\n")
    .replace(/[\u2018\u2019\u201B\u2032]/g, "'")
    .replace(/[\u201C\u201D\u201F\u2033]/g, '"')
    .replace(/[\u2010\u2011]/g, "-")
    .replace(/[\u00A0\u2007\u202F]/g, " ")
    .replace(/[\u200B\uFEFF]/g, "")
    .replace(/\s*\((?:Applause|Laughter)[^)]{0,40}\)/g, "")
    .replace(/[^\S\n]+/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .join("\n");
}
