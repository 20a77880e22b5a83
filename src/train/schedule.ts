import { UsageError } from '../util/errors.js';

/** A learning rate per optimiser step (0-based: `lr(0)` is the rate of the first update). */
export type LrSchedule = (step: number) => number;

/** Options of {@link cosineWithWarmup}. */
export interface CosineOptions {
  /** Peak rate, reached at step `warmupSteps` (> 0). */
  baseLr: number;
  /** Final rate, reached at step `totalSteps` and kept after it (default 0, at most `baseLr`). */
  minLr?: number;
  /** Steps of linear warm-up (default 0, at most `totalSteps`). */
  warmupSteps?: number;
  /** Steps of the whole schedule (integer >= 1). */
  totalSteps: number;
  /** Rate at step 0 of the warm-up (default 0, at most `baseLr`). */
  warmupStartLr?: number;
}

/**
 * Linear warm-up then half a cosine:
 * ```
 * lr(s) = start + (base − start) · s / W                          for s < W
 * lr(s) = min + (base − min) · (1 + cos(π · (s − W) / (T − W))) / 2  for W <= s <= T
 * lr(s) = min                                                       for s > T
 * ```
 * with W = `warmupSteps` and T = `totalSteps`. The maximum `baseLr` is reached at step
 * W exactly (the first step after the warm-up; step 0 when W = 0), the middle of the
 * cosine (s = W + (T − W)/2) gives (base + min)/2, and `minLr` is reached at step T —
 * so the last of T updates (step T − 1) still runs slightly above `minLr`. When W = T
 * the whole run is warm-up and every later step gets `minLr`.
 * @param o - rates and step counts
 * @example
 * const lr = cosineWithWarmup({ baseLr: 1e-3, warmupSteps: 100, totalSteps: 1000 });
 * lr(0); // 0
 * lr(50); // 5e-4
 * lr(100); // 1e-3
 * lr(550); // 5e-4
 * lr(1000); // 0
 */
export function cosineWithWarmup(o: CosineOptions): LrSchedule {
  const base = o.baseLr;
  const minLr = o.minLr ?? 0;
  const warm = o.warmupSteps ?? 0;
  const start = o.warmupStartLr ?? 0;
  const total = o.totalSteps;
  if (!(Number.isFinite(base) && base > 0))
    throw new UsageError(`learning rate (--lr) must be a finite number > 0, got ${base}`);
  if (!(minLr >= 0 && minLr <= base))
    throw new UsageError(`minimum learning rate (--min-lr) must be in [0, ${base}], got ${minLr}`);
  if (!(start >= 0 && start <= base))
    throw new UsageError(`warm-up start rate must be in [0, ${base}], got ${start}`);
  if (!Number.isInteger(total) || total < 1)
    throw new UsageError(`total steps must be an integer >= 1, got ${total}`);
  if (!Number.isInteger(warm) || warm < 0 || warm > total)
    throw new UsageError(`warm-up steps must be an integer in 0..${total}, got ${warm}`);
  return (step) => {
    checkStep(step);
    if (step < warm) return start + ((base - start) * step) / warm;
    if (step >= total) return minLr;
    const p = (step - warm) / (total - warm);
    return minLr + 0.5 * (base - minLr) * (1 + Math.cos(Math.PI * p));
  };
}

/**
 * A constant learning rate.
 * @param lr - the rate (> 0)
 * @example
 * constantLr(0.01)(123); // 0.01
 */
export function constantLr(lr: number): LrSchedule {
  if (!(Number.isFinite(lr) && lr > 0))
    throw new UsageError(`learning rate (--lr) must be a finite number > 0, got ${lr}`);
  return (step) => {
    checkStep(step);
    return lr;
  };
}

function checkStep(step: number): void {
  if (!(Number.isFinite(step) && step >= 0))
    throw new UsageError(`schedule step must be a finite number >= 0, got ${step}`);
}
