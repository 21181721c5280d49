import { describe, expect, it } from "vitest";
import type { HistoryEntry, ValidationEntry } from "./checkpoint.js";
import { lossCsv, parseCsv, parseLossCsv } from "./loss-csv.js";

describe("loss history as CSV", () => {
  it("has a step,loss,... header and one row per trained or validated step", () => {
    const history: HistoryEntry[] = [
      { step: 1, loss: 0.5, parts: { mse: 0.25, ce: 0.25 }, lr: 0.001, gradNorm: 2 },
      { step: 2, loss: 0.4, parts: { mse: 0.2, ce: 0.2 }, lr: 0.0005, gradNorm: 1.5 },
    ];
    const validation: ValidationEntry[] = [
      { step: 0, metric: -20, values: { metric: -20, psnr: 20 } },
      { step: 2, metric: -21.5, values: { metric: -21.5, psnr: 21.5 } },
    ];
    expect(lossCsv(history, validation)).toBe(
      "step,loss,loss_mse,loss_ce,lr,grad_norm,val_metric,val_psnr\n" +
        "0,,,,,,-20,20\n" +
        "1,0.5,0.25,0.25,0.001,2,,\n" +
        "2,0.4,0.2,0.2,0.0005,1.5,-21.5,21.5\n",
    );
    expect(lossCsv([{ step: 1, loss: 1, parts: {}, lr: 0, gradNorm: 0 }])).toBe("step,loss,lr,grad_norm\n1,1,0,0\n");
  });

  it("round-trips exactly, including awkward numbers and names", () => {
    const history: HistoryEntry[] = Array.from({ length: 50 }, (_, i) => ({
      step: i + 1,
      loss: Math.fround(Math.exp(-i / 7) + Math.PI * 1e-9),
      parts: { 'a,"b"': 1 / (i + 3), "new\nline": i === 3 ? NaN : i * 1e-30 },
      lr: 3e-4 * Math.cos(i),
      gradNorm: i === 7 ? Infinity : 1 / 3,
    }));
    const validation: ValidationEntry[] = [{ step: 10, metric: 0.1, values: { metric: 0.1, ssim: 0.912345678901234 } }, { step: 60, metric: 0.2, values: { metric: 0.2, ssim: 0.5 } }];
    const text = lossCsv(history, validation);
    expect(parseLossCsv(text)).toEqual({ history, validation });
  });

  it("parses RFC 4180 quoting and reports malformed input", () => {
    expect(parseCsv('a,"b,c","d""e"\n"x\ny",,z')).toEqual([["a", "b,c", 'd"e'], ["x\ny", "", "z"]]);
    expect(parseCsv("a,b\r\n1,2\r\n")).toEqual([["a", "b"], ["1", "2"]]);
    expect(() => parseCsv('a,"b')).toThrow(/not closed/);
    expect(() => parseLossCsv("epoch,loss\n1,2\n")).toThrow(/step,loss/);
    expect(() => parseLossCsv("step,loss,lr\n1,2\n")).toThrow(/row 2 has 2 fields/);
  });
});
