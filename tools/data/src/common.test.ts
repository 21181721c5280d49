import { describe, expect, it } from "vitest";
import { z } from "zod";
import { clean, fraction, licenceOf, makeRng, parseCommandLine, parseCopyright, shuffled, usageText } from "./common.js";

const COPYRIGHT = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: example
Files-Excluded:
 samples/data/secret.jpg

Files: *
Copyright: 2000-2022, Someone
           2009, Someone Else
License: Apache-2.0 AND BSD-3-Clause
 Text of the licence that spans
 more lines.

Files: 16.04/seeding_by_X.jpg
Copyright: X, 2018
License: CC0-1.0

Files: nature/*.jpg
Copyright: 2008, Y
License: GPL-2+

Files: nature/Wood.jpg
Copyright: 2008, Z
License: CC-BY-4.0
`;

describe("licenceOf", () => {
  it("parses the Files stanzas only", () => {
    const stanzas = parseCopyright(COPYRIGHT);
    expect(stanzas.map((s) => s.files.join(" "))).toEqual(["*", "16.04/seeding_by_X.jpg", "nature/*.jpg", "nature/Wood.jpg"]);
    expect(stanzas[0].copyright).toBe("2000-2022, Someone; 2009, Someone Else");
  });

  it("takes the last matching stanza, * as the fallback", () => {
    expect(licenceOf(COPYRIGHT, "16.04/seeding_by_X.jpg")).toEqual({ licence: "CC0-1.0", copyright: "X, 2018", stanza: "16.04/seeding_by_X.jpg" });
    expect(licenceOf(COPYRIGHT, "nature/Aqua.jpg").licence).toBe("GPL-2+");
    expect(licenceOf(COPYRIGHT, "nature/Wood.jpg").licence).toBe("CC-BY-4.0");
    expect(licenceOf(COPYRIGHT, "samples/data/fruits.jpg").licence).toBe("Apache-2.0 AND BSD-3-Clause");
    expect(licenceOf("Files: a/*\nLicense: MIT\n", "b/c.png").licence).toBe("unknown");
  });
});

describe("clean", () => {
  it("normalises quotes, spaces and transcript notes, one paragraph per line", () => {
    const raw = "\u201CThank you.\u201D (Applause.) It\u2019s  good\u00A0to be\tback.\r\n\r\n  Second\u2011paragraph \u2014 here.  \n\n\n";
    expect(clean(raw)).toBe("\"Thank you.\" It's good to be back.\nSecond-paragraph \u2014 here.");
  });

  it("composes to NFC", () => {
    expect(clean("e\u0301")).toBe("\u00E9");
  });
});

describe("rng", () => {
  it("is seeded and shuffles deterministically", () => {
    const a = makeRng(5);
    const b = makeRng(5);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const items = [...Array(20).keys()];
    const s = shuffled(items, makeRng(9));
    expect(shuffled(items, makeRng(9))).toEqual(s);
    expect([...s].sort((p, q) => p - q)).toEqual(items);
    expect(s).not.toEqual(items);
  });

  it("gives the pinned stream (the photo and text selections depend on it)", () => {
    // Drawn when makeRng had its own copy of mulberry32 (before it used core's Mulberry32).
    const r = makeRng(5);
    expect([r(), r(), r()]).toEqual([0.6897749109193683, 0.7727432732935995, 0.21976301027461886]);
    expect(shuffled([...Array(20).keys()], makeRng(9))).toEqual([0, 4, 8, 7, 18, 12, 9, 17, 5, 14, 6, 1, 15, 19, 10, 11, 13, 2, 16, 3]);
  });
});

describe("command-line options (core's parseCommandLine)", () => {
  const SCHEMA = z.object({ valFraction: fraction().default(0.1).describe("held out") });

  it("fraction() takes a number in [0, 1] as text and names the flag otherwise", () => {
    expect(parseCommandLine(["--", "--val-fraction", "0.25"], SCHEMA).options).toEqual({ valFraction: 0.25 });
    expect(() => parseCommandLine(["--val-fraction", "2"], SCHEMA)).toThrow("--val-fraction: expected a number in [0, 1], got 2");
    expect(usageText("usage: x", SCHEMA)).toMatch(/--val-fraction <number> +held out \(default 0\.1\)/);
  });
});
