/**
 * Progress display: one redrawn line on a terminal, plain log lines otherwise
 * (pipes, files, CI). Shows step/total, loss and its parts, lr, throughput, ETA.
 */

export interface ProgressOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Force the single-line mode on or off; default: stream is a TTY and CI is unset. */
  tty?: boolean;
  /** Plain mode: print every n steps (default: about 50 lines per run). The last step is always printed. */
  every?: number;
}

export interface ProgressStep {
  step: number;
  total: number;
  loss: number;
  parts: Record<string, number>;
  lr: number;
  /** Items per step (batch size × accumulation); throughput is shown in steps/s when absent. */
  itemsPerStep?: number;
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e4 ? x.toPrecision(4) : x.toExponential(2);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

export class Progress {
  private readonly stream: NonNullable<ProgressOptions["stream"]>;
  private readonly tty: boolean;
  private readonly every?: number;
  private startTime = 0;
  private startStep = 0;
  private lastLine = "";

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? (Boolean(this.stream.isTTY) && !process.env.CI);
    this.every = opts.every;
  }

  /** Marks the start of timing (the step the run starts from, e.g. after a resume). */
  start(step: number): void {
    this.startTime = performance.now();
    this.startStep = step;
  }

  /** The text shown for a step (without bar), also used by the plain mode. */
  describe(p: ProgressStep): string {
    const elapsed = (performance.now() - this.startTime) / 1000;
    const done = p.step - this.startStep;
    const stepsPerSec = elapsed > 0 ? done / elapsed : 0;
    const rate = p.itemsPerStep ? `${formatNumber(stepsPerSec * p.itemsPerStep)} items/s` : `${formatNumber(stepsPerSec)} steps/s`;
    const eta = stepsPerSec > 0 ? formatDuration((p.total - p.step) / stepsPerSec) : "?";
    const parts = Object.entries(p.parts).map(([n, v]) => ` ${n} ${formatNumber(v)}`).join("");
    const width = String(p.total).length;
    return `step ${String(p.step).padStart(width)}/${p.total} loss ${formatNumber(p.loss)}${parts} lr ${formatNumber(p.lr)} ${rate} eta ${eta}`;
  }

  update(p: ProgressStep): void {
    const text = this.describe(p);
    if (this.tty) {
      const barWidth = 20;
      const filled = Math.round((barWidth * p.step) / p.total);
      let line = `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ${text}`;
      const cols = this.stream.columns ?? 120;
      if (line.length > cols - 1) line = line.slice(0, cols - 1);
      this.lastLine = line;
      this.stream.write(`\r\x1b[2K${line}`);
      if (p.step === p.total) {
        this.stream.write("\n");
        this.lastLine = "";
      }
      return;
    }
    const every = this.every ?? Math.max(1, Math.floor(p.total / 50));
    if (p.step % every === 0 || p.step === p.total || p.step === this.startStep + 1) this.stream.write(`${text}\n`);
  }

  /** Prints a message on its own line (the progress line is redrawn after it on a TTY). */
  log(message: string): void {
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${message}\n`);
      if (this.lastLine) this.stream.write(this.lastLine);
    } else this.stream.write(`${message}\n`);
  }

  /** Ends the progress line on a TTY. */
  finish(): void {
    if (this.tty && this.lastLine) this.stream.write("\n");
    this.lastLine = "";
  }
}
