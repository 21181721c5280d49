/**
 * Learning-rate schedules. Steps are numbered 1..totalSteps; `learningRate(s)`
 * is the rate used by the update of step s.
 *
 * "warmup-linear" (spec §7, the default):
 *   W = min(T, max(10, ceil(0.1·T)))          warmup steps (overridable)
 *   s ≤ W:  lr · ln(1 + s) / ln(1 + W)         log-shaped ramp, reaches lr at s = W
 *   s > W:  lr · (T − s) / (T − W)             linear decay, 0 at the last step s = T
 * "cosine": the same ramp, then minLr + (lr − minLr)·½(1 + cos(π·(s − W)/(T − W))), minLr at s = T.
 * "constant": lr at every step (with the log ramp only if warmupSteps is given).
 */

export type ScheduleKind = "warmup-linear" | "cosine" | "constant";

export interface ScheduleOptions {
  kind?: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  totalSteps: number;
  /** Warmup length; default max(10, ceil(10 % of totalSteps)) (0 for "constant"), capped at totalSteps. */
  warmupSteps?: number;
  /** Final rate of "cosine". Default 0. */
  minLr?: number;
}

/** The spec's warmup length: max(10, ceil(0.1·T)), never more than T. */
export function defaultWarmupSteps(totalSteps: number): number {
  return Math.min(totalSteps, Math.max(10, Math.ceil(0.1 * totalSteps)));
}

/** Builds the schedule as a function of the 1-based step. */
export function makeSchedule(opts: ScheduleOptions): (step: number) => number {
  const kind = opts.kind ?? "warmup-linear";
  const { lr, totalSteps: T } = opts;
  if (!["warmup-linear", "cosine", "constant"].includes(kind)) throw new RangeError(`schedule: unknown kind "${kind}"`);
  if (!Number.isInteger(T) || T < 1) throw new RangeError(`schedule: totalSteps must be a positive integer, got ${T}`);
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new RangeError(`schedule: lr must be a finite number >= 0, got ${lr}`);
  const minLr = opts.minLr ?? 0;
  let W: number;
  if (opts.warmupSteps !== undefined) {
    if (!Number.isInteger(opts.warmupSteps) || opts.warmupSteps < 0) throw new RangeError(`schedule: warmupSteps must be an integer >= 0, got ${opts.warmupSteps}`);
    W = Math.min(T, opts.warmupSteps);
  } else {
    W = kind === "constant" ? 0 : defaultWarmupSteps(T);
  }
  const ramp = (s: number) => (lr * Math.log(1 + s)) / Math.log(1 + W);
  return (step: number) => {
    if (!Number.isInteger(step) || step < 1 || step > T) throw new RangeError(`schedule: step must be an integer in [1, ${T}], got ${step}`);
    if (step <= W) return ramp(step);
    if (kind === "constant") return lr;
    if (kind === "warmup-linear") return (lr * (T - step)) / (T - W);
    const frac = (step - W) / (T - W); // in (0, 1], 1 at the last step
    return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * frac));
  };
}
