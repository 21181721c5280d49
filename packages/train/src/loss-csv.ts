/**
 * A training history as CSV: one row per step, written next to the loss chart
 * so the numbers can be re-plotted or compared with any tool.
 *
 * Columns:  step, loss, loss_<part>..., lr, grad_norm, val_<name>...
 * A row exists for every trained step and every validated step; a cell is empty
 * where that step has no such value (e.g. the validation columns of the steps
 * that were not validated). Numbers are written in JavaScript's shortest
 * round-trip form, so parsing gives back exactly the same doubles.
 */
import type { HistoryEntry, ValidationEntry } from "./checkpoint.js";

const PART = "loss_";
const VAL = "val_";

/** Quotes a field when it holds a comma, a quote or a line break (RFC 4180). */
function field(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function num(v: number | undefined): string {
  return v === undefined ? "" : String(v);
}

/** The history and validation values as CSV text (header + one row per step, ascending). */
export function lossCsv(history: HistoryEntry[], validation: ValidationEntry[] = []): string {
  const parts = [...new Set(history.flatMap((h) => Object.keys(h.parts)))];
  const vals = [...new Set(validation.flatMap((v) => ["metric", ...Object.keys(v.values)]))];
  const header = ["step", "loss", ...parts.map((p) => PART + p), "lr", "grad_norm", ...vals.map((v) => VAL + v)];

  const train = new Map(history.map((h) => [h.step, h]));
  const validated = new Map(validation.map((v) => [v.step, v]));
  const steps = [...new Set([...train.keys(), ...validated.keys()])].sort((a, b) => a - b);
  const lines = [header.map(field).join(",")];
  for (const step of steps) {
    const h = train.get(step);
    const v = validated.get(step);
    const row = [String(step), num(h?.loss), ...parts.map((p) => num(h?.parts[p])), num(h?.lr), num(h?.gradNorm)];
    for (const name of vals) row.push(num(v === undefined ? undefined : name === "metric" ? v.metric : v.values[name]));
    lines.push(row.join(","));
  }
  return lines.join("\n") + "\n";
}

/** Splits CSV text into rows of fields (RFC 4180 quoting; a trailing line break ends the last row). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') { cell += '"'; i++; }
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell); rows.push(row);
      row = []; cell = "";
    } else cell += c;
  }
  if (quoted) throw new Error("CSV: a quoted field is not closed");
  if (cell !== "" || row.length > 0) { row.push(cell); rows.push(row); }
  return rows;
}

/**
 * Reads what lossCsv wrote back into the trainer's history and validation entries
 * (`values` holds every `val_` column, `metric` included, as the trainer records them).
 */
export function parseLossCsv(text: string): { history: HistoryEntry[]; validation: ValidationEntry[] } {
  const [header, ...rows] = parseCsv(text);
  if (!header || header[0] !== "step" || header[1] !== "loss") throw new Error(`loss CSV: the header must start with "step,loss", got ${JSON.stringify(header?.slice(0, 2).join(","))}`);
  const col = (name: string) => header.indexOf(name);
  const history: HistoryEntry[] = [];
  const validation: ValidationEntry[] = [];
  rows.forEach((r, i) => {
    if (r.length !== header.length) throw new Error(`loss CSV: row ${i + 2} has ${r.length} fields, the header has ${header.length}`);
    const at = (j: number): number | undefined => (j < 0 || r[j] === "" ? undefined : Number(r[j]));
    const step = Number(r[0]);
    const loss = at(1);
    if (loss !== undefined) {
      const parts: Record<string, number> = {};
      header.forEach((h, j) => {
        const v = at(j);
        if (h.startsWith(PART) && v !== undefined) parts[h.slice(PART.length)] = v;
      });
      history.push({ step, loss, parts, lr: at(col("lr")) ?? NaN, gradNorm: at(col("grad_norm")) ?? NaN });
    }
    const values: Record<string, number> = {};
    header.forEach((h, j) => {
      const v = at(j);
      if (h.startsWith(VAL) && v !== undefined) values[h.slice(VAL.length)] = v;
    });
    const metric = at(col(VAL + "metric"));
    if (metric !== undefined) validation.push({ step, metric, values });
  });
  return { history, validation };
}
