/**
 * A 3×5 pixel bitmap font (digits, A–Z, a few signs) for the captions of
 * image grids: sample sheets are PNGs, so their text is drawn into the pixels.
 * Lower case is drawn as upper case; unknown characters are drawn as blanks.
 */

// Each glyph: five rows of three pixels, "#" = ink.
const GLYPHS: Record<string, string> = {
  "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "### ..# ### #.. ###", "3": "### ..# ### ..# ###",
  "4": "#.# #.# ### ..# ..#", "5": "### #.. ### ..# ###", "6": "### #.. ### #.# ###", "7": "### ..# ..# .#. .#.",
  "8": "### #.# ### #.# ###", "9": "### #.# ### ..# ###",
  A: ".#. #.# ### #.# #.#", B: "##. #.# ##. #.# ##.", C: ".## #.. #.. #.. .##", D: "##. #.# #.# #.# ##.",
  E: "### #.. ##. #.. ###", F: "### #.. ##. #.. #..", G: ".## #.. #.# #.# .##", H: "#.# #.# ### #.# #.#",
  I: "### .#. .#. .#. ###", J: "..# ..# ..# #.# .#.", K: "#.# #.# ##. #.# #.#", L: "#.. #.. #.. #.. ###",
  M: "#.# ### ### #.# #.#", N: "##. #.# #.# #.# #.#", O: ".#. #.# #.# #.# .#.", P: "##. #.# ##. #.. #..",
  Q: ".#. #.# #.# ##. .##", R: "##. #.# ##. #.# #.#", S: ".## #.. .#. ..# ##.", T: "### .#. .#. .#. .#.",
  U: "#.# #.# #.# #.# ###", V: "#.# #.# #.# #.# .#.", W: "#.# #.# ### ### #.#", X: "#.# #.# .#. #.# #.#",
  Y: "#.# #.# .#. .#. .#.", Z: "### ..# .#. #.. ###",
  ".": "... ... ... ... .#.", "-": "... ... ### ... ...", "+": "... .#. ### .#. ...", ":": "... .#. ... .#. ...",
  "/": "..# ..# .#. #.. #..", _: "... ... ... ... ###", "=": "... ### ... ### ...", "(": ".#. #.. #.. #.. .#.",
  ")": ".#. ..# ..# ..# .#.", ",": "... ... ... .#. #..", "%": "#.# ..# .#. #.. #.#", " ": "... ... ... ... ...",
};

export const GLYPH_WIDTH = 3;
export const GLYPH_HEIGHT = 5;

/**
 * Draws text into an HWC float RGB buffer of the given width/height with its
 * top-left corner at (x, y); pixels outside the buffer are skipped.
 */
export function drawText(data: Float32Array, width: number, height: number, text: string, x: number, y: number, color: readonly [number, number, number], scale = 1): void {
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const rows = (GLYPHS[ch] ?? GLYPHS[" "]).split(" ");
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (rows[gy][gx] !== "#") continue;
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++) {
            const px = cx + gx * scale + sx;
            const py = y + gy * scale + sy;
            if (px < 0 || py < 0 || px >= width || py >= height) continue;
            const o = (py * width + px) * 3;
            data[o] = color[0];
            data[o + 1] = color[1];
            data[o + 2] = color[2];
          }
        }
      }
    }
    cx += (GLYPH_WIDTH + 1) * scale;
  }
}
