import { describe, expect, it } from "vitest";
import { main, parseMetricsArgs } from "./run-cli.js";

describe("parseMetricsArgs", () => {
  it("gives typed options with the defaults", () => {
    expect(parseMetricsArgs(["gt", "pred"])).toEqual({ gt: "gt", pred: "pred", options: { cropBorder: 4, json: false }, help: false });
    expect(parseMetricsArgs(["gt", "pred", "--crop-border", "0", "--y-channel", "--suffix", "_x4", "--json"])).toEqual({
      gt: "gt",
      pred: "pred",
      options: { cropBorder: 0, yChannel: true, suffix: "_x4", json: true },
      help: false,
    });
    expect(parseMetricsArgs(["--crop-border=8", "gt", "pred"])).toMatchObject({ options: { cropBorder: 8 } });
  });

  it("--help skips validation", () => {
    expect(parseMetricsArgs(["--help", "--crop-border", "x"])).toEqual({ help: true });
    expect(parseMetricsArgs(["-h"])).toEqual({ help: true });
  });

  it.each([
    [["gt", "pred", "--bogus"], /Unknown option '--bogus'/],
    [["gt", "pred", "--crop-border", "x"], /--crop-border: expected an integer >= 0, got "x"/],
    [["gt", "pred", "--crop-border", "2.5"], /--crop-border: expected an integer >= 0, got 2.5/],
    [["gt", "pred", "--crop-border=-1"], /--crop-border: expected an integer >= 0, got -1/],
    [["gt", "pred", "--suffix"], /--suffix <value>' argument missing/],
    [["gt"], /expected <gt> <pred>, got 1 argument\(s\)/],
    [["a", "b", "c"], /expected <gt> <pred>, got 3 argument\(s\)/],
  ])("rejects %j naming the flag", (argv, message) => {
    expect(() => parseMetricsArgs(argv as string[])).toThrow(message);
  });

  it("main prints usage for --help and exits 1 naming the flag", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
    expect(await main(["--help"], io)).toBe(0);
    expect(out[0]).toMatch(/^usage: metrics <gt> <pred>/);
    expect(out[0]).toContain("(default 4)");
    expect(await main(["gt", "pred", "--crop-border", "x"], io)).toBe(1);
    expect(err).toEqual(['metrics: --crop-border: expected an integer >= 0, got "x"', 'run "metrics --help" for usage']);
  });
});
