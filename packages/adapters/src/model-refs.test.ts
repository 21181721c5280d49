import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCheckpointInfo } from "./checkpoint.js";
import { ModelReferenceError, embeddedModelDirs, modelName, resolveModelReferences } from "./model-refs.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const root = mkdtempSync(join(tmpdir(), "lm4lv-model-refs-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A folder that passes for a model (config.json) and, with `tokenizer`, a tokenizer folder. */
function fakeModel(dir: string, tokenizer = false): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), "{}");
  if (tokenizer) writeFileSync(join(dir, "tokenizer.json"), "{}");
  return dir;
}

function info(visionModel: string, llm: string, tokenizer?: string) {
  return { visionModel, llm, extra: tokenizer === undefined ? {} : { tokenizer } };
}

function thrown(f: () => unknown): ModelReferenceError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelReferenceError);
    return e as ModelReferenceError;
  }
  throw new Error("expected a ModelReferenceError");
}

describe("model references of lm4lv.json", () => {
  const models = join(root, "repo", "models");
  const mae = fakeModel(join(models, "mae-x"));
  const llm = fakeModel(join(models, "lm-x"), true);
  const ckpt = join(root, "repo", "runs", "a");
  mkdirSync(ckpt, { recursive: true });
  const copy = join(root, "elsewhere", "a");
  mkdirSync(copy, { recursive: true });

  it("takes a reference relative to the checkpoint first, the tokenizer following the LLM", () => {
    expect(resolveModelReferences(ckpt, info("../../models/mae-x", "../../models/lm-x", "../../models/lm-x"), { modelDirs: [] })).toEqual({ mae, llm, tokenizer: llm });
    expect(resolveModelReferences(ckpt, info(mae, llm), { modelDirs: [] })).toEqual({ mae, llm, tokenizer: undefined });
  });

  it("finds the models of a copied checkpoint by name", () => {
    const r = resolveModelReferences(copy, info("../../models/mae-x", "../../models/lm-x/", "../../models/lm-x"), { modelDirs: [join(root, "nowhere"), models] });
    expect(r).toEqual({ mae, llm, tokenizer: llm });
    expect(["../../mae-tiny", "/abs/lm-wide/", "lm-wide", "..", "."].map(modelName)).toEqual(["mae-tiny", "lm-wide", "lm-wide", undefined, undefined]);
  });

  it("lets given folders win, and checks them", () => {
    const other = fakeModel(join(root, "other", "mae-x"));
    const otherLm = fakeModel(join(root, "other", "lm-x"), true);
    const refs = info("../../models/mae-x", "../../models/lm-x", "../../models/lm-x");
    expect(resolveModelReferences(ckpt, refs, { mae: other, modelDirs: [] })).toEqual({ mae: other, llm, tokenizer: llm });
    // the tokenizer stored as the LLM's follows an LLM override
    expect(resolveModelReferences(copy, refs, { mae: other, llm: otherLm, modelDirs: [] })).toEqual({ mae: other, llm: otherLm, tokenizer: otherLm });
    expect(resolveModelReferences(ckpt, refs, { tokenizer: otherLm, modelDirs: [] }).tokenizer).toBe(otherLm);
    const e = thrown(() => resolveModelReferences(ckpt, refs, { llm: join(root, "missing"), modelDirs: [] }));
    expect(e.field).toBe("override");
    expect(e.message).toMatch(/llm folder .*missing: no config\.json there \(given instead of .*lm4lv\.json field "llm"\)/);
  });

  it("names lm4lv.json, the field and every place tried when nothing is found", () => {
    const e = thrown(() => resolveModelReferences(copy, info("../../models/mae-x", "../../models/lm-y"), { modelDirs: [models, join(root, "more")] }));
    expect(e.file).toBe(join(copy, "lm4lv.json"));
    expect(e.field).toBe("llm");
    expect(e.tried).toEqual([resolve(copy, "../../models/lm-y"), join(models, "lm-y"), join(root, "more", "lm-y")]);
    expect(e.message).toContain(`${join(copy, "lm4lv.json")}: field "llm" = "../../models/lm-y" is not a folder with config.json; tried:`);
    expect(e.message).toContain(`${resolve(copy, "../../models/lm-y")} (relative to the checkpoint)`);
    expect(e.message).toContain(`${join(models, "lm-y")} (model "lm-y" in ${models})`);
    expect(e.message).toMatch(/--llm on the command line/);
    // a separate tokenizer folder needs tokenizer.json
    const t = thrown(() => resolveModelReferences(ckpt, info(mae, llm, "../../models/mae-x"), { modelDirs: [] }));
    expect([t.field, t.message.includes("is not a folder with tokenizer.json")]).toEqual(["extra.tokenizer", true]);
  });

  it("finds the embedded models for a copy of a shipped checkpoint", () => {
    expect(embeddedModelDirs()).toEqual([join(REPO, "models")]);
    const shipped = join(REPO, "models", "lm4lv-tiny", "identity");
    const dst = join(root, "shipped-copy");
    mkdirSync(dst);
    cpSync(join(shipped, "lm4lv.json"), join(dst, "lm4lv.json"));
    const refs = readCheckpointInfo(dst);
    expect(JSON.parse(readFileSync(join(dst, "lm4lv.json"), "utf8")).visionModel).toBe("../../mae-tiny");
    expect(resolveModelReferences(dst, refs)).toEqual({ mae: join(REPO, "models", "mae-tiny"), llm: join(REPO, "models", "lm-wide"), tokenizer: join(REPO, "models", "lm-wide") });
  });
});
