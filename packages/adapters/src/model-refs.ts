/**
 * Where the frozen models of an LM4LV checkpoint are.
 *
 * lm4lv.json names the MAE, the LLM and the tokenizer folders (`visionModel`, `llm`,
 * `extra.tokenizer`), stored relative to the checkpoint, e.g. "../../mae-tiny". A checkpoint folder
 * copied elsewhere keeps its references but not what they pointed at, so each one is resolved in
 * this order, the first folder that holds the model's file winning:
 *
 *   1. a folder given by the caller (`mae`, `llm`, `tokenizer`; `--mae DIR` on the command line)
 *   2. the reference as written: absolute, or relative to the checkpoint folder
 *   3. the reference's last component, the model's name ("mae-tiny"), inside each of `modelDirs`;
 *      by default the `models/` folder of the lm4lv repository this code runs from, where the
 *      embedded models live
 *
 * A model folder holds config.json, a tokenizer folder tokenizer.json. When `extra.tokenizer` is the
 * same reference as `llm` (the tokenizer ships with the LM), it follows wherever `llm` resolved to.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CheckpointError, RUN_FILE, type CheckpointInfo } from "./checkpoint.js";

/** The lm4lv.json fields that name model folders. */
export type ModelReferenceField = "visionModel" | "llm" | "extra.tokenizer";

/** Folders given by the caller; they win over lm4lv.json. */
export interface ModelOverrides {
  mae?: string;
  llm?: string;
  tokenizer?: string;
}

export interface ResolveModelsOptions extends ModelOverrides {
  /** Folders searched by model name after the checkpoint-relative path (default: embeddedModelDirs()). */
  modelDirs?: string[];
}

/** Absolute folders of the checkpoint's models. */
export interface ResolvedModels {
  mae: string;
  llm: string;
  /** Absent when lm4lv.json names no tokenizer (the LLM folder holds it). */
  tokenizer?: string;
}

/** A model reference of lm4lv.json that no candidate folder satisfied; names the file, the field and every place tried. */
export class ModelReferenceError extends CheckpointError {
  constructor(
    readonly file: string,
    readonly field: ModelReferenceField | "override",
    readonly reference: string,
    readonly tried: string[],
    message: string,
  ) {
    super(message);
    this.name = "ModelReferenceError";
  }
}

const OPTION: Record<ModelReferenceField, keyof ModelOverrides> = { visionModel: "mae", llm: "llm", "extra.tokenizer": "tokenizer" };
const MARKER: Record<ModelReferenceField, string> = { visionModel: "config.json", llm: "config.json", "extra.tokenizer": "tokenizer.json" };

function holds(dir: string, file: string): boolean {
  return existsSync(join(dir, file)) && statSync(dir).isDirectory();
}

/** The name a reference is looked up by: its last path component ("../../mae-tiny" → "mae-tiny"). */
export function modelName(reference: string): string | undefined {
  const name = basename(reference.replace(/[\\/]+$/, ""));
  return name && name !== "." && name !== ".." ? name : undefined;
}

let embedded: string[] | undefined;

/**
 * The `models/` folder of the lm4lv repository this code runs from (found by walking up from this
 * module to the folder whose package.json is the lm4lv monorepo's), or none when installed elsewhere.
 */
export function embeddedModelDirs(): string[] {
  if (embedded) return embedded;
  embedded = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && existsSync(join(dir, "pnpm-workspace.yaml"))) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "lm4lv-monorepo" && existsSync(join(dir, "models"))) embedded = [join(dir, "models")];
      } catch {
        /* not ours */
      }
      break;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return embedded;
}

/**
 * Resolves the model folders of the checkpoint in `dir` (see the module comment for the order).
 * Throws ModelReferenceError naming lm4lv.json, the field and every folder tried.
 */
export function resolveModelReferences(dir: string, info: Pick<CheckpointInfo, "visionModel" | "llm" | "extra">, opts: ResolveModelsOptions = {}): ResolvedModels {
  const file = join(dir, RUN_FILE);
  const modelDirs = opts.modelDirs ?? embeddedModelDirs();

  const one = (field: ModelReferenceField, reference: string): string => {
    const option = OPTION[field];
    const marker = MARKER[field];
    const given = opts[option];
    if (given !== undefined) {
      const abs = resolve(given);
      if (holds(abs, marker)) return abs;
      throw new ModelReferenceError(file, "override", given, [abs], `${option} folder ${given}: no ${marker} there (given instead of ${file} field "${field}")`);
    }
    const tried: string[] = [];
    const notes: string[] = [];
    const candidate = (p: string, note: string) => {
      if (tried.includes(p)) return;
      tried.push(p);
      notes.push(`  ${p} (${note})`);
    };
    candidate(isAbsolute(reference) ? reference : resolve(dir, reference), isAbsolute(reference) ? "as written" : "relative to the checkpoint");
    const name = modelName(reference);
    if (name) for (const m of modelDirs) candidate(resolve(m, name), `model "${name}" in ${m}`);
    const found = tried.find((p) => holds(p, marker));
    if (found) return found;
    throw new ModelReferenceError(
      file,
      field,
      reference,
      tried,
      `${file}: field "${field}" = ${JSON.stringify(reference)} is not a folder with ${marker}; tried:\n${notes.join("\n")}\n` +
        `give the folder explicitly (option "${option}", --${option} on the command line)`,
    );
  };

  const mae = one("visionModel", info.visionModel);
  const llm = one("llm", info.llm);
  const tok = info.extra?.tokenizer;
  let tokenizer: string | undefined;
  if (opts.tokenizer !== undefined || typeof tok === "string") {
    tokenizer = opts.tokenizer === undefined && tok === info.llm ? llm : one("extra.tokenizer", typeof tok === "string" ? tok : info.llm);
  }
  return { mae, llm, tokenizer };
}
