import { UsageError } from '../errors.js';

export interface CosineOptions {
  baseLr: number;
  minLr?: number;
  warmupSteps?: number;
  totalSteps: number;
  /** Learning rate at step 0 of the warm-up (default 0). */
  warmupStartLr?: number;
}

/**
 * Linear warm-up from `warmupStartLr` to `baseLr` over `warmupSteps` (the base rate is
 * reached at step `warmupSteps`), then half a cosine down to `minLr` at `totalSteps`.
 * @example
 * const lr = cosineWithWarmup({ baseLr: 1e-3, warmupSteps: 100, totalSteps: 1000 });
 * lr(0); // 0
 * lr(100); // 1e-3
 */
export function cosineWithWarmup(o: CosineOptions): (step: number) => number {
  const minLr = o.minLr ?? 0;
  const warm = o.warmupSteps ?? 0;
  const start = o.warmupStartLr ?? 0;
  if (!(o.baseLr > 0)) throw new UsageError(`--lr must be > 0, got ${o.baseLr}`);
  if (!(minLr >= 0) || minLr > o.baseLr)
    throw new UsageError(`--min-lr must be in [0, lr], got ${minLr}`);
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 1)
    throw new UsageError(`total steps must be >= 1, got ${o.totalSteps}`);
  if (!Number.isInteger(warm) || warm < 0 || warm > o.totalSteps) {
    throw new UsageError(`warm-up steps must be in 0..${o.totalSteps}, got ${warm}`);
  }
  return (step) => {
    if (step < warm) return start + ((o.baseLr - start) * step) / warm;
    const span = Math.max(1, o.totalSteps - warm);
    const p = Math.min(1, (step - warm) / span);
    return minLr + 0.5 * (o.baseLr - minLr) * (1 + Math.cos(Math.PI * p));
  };
}

/** A constant learning rate. */
export function constantLr(lr: number): (step: number) => number {
  if (!(lr > 0)) throw new UsageError(`--lr must be > 0, got ${lr}`);
  return () => lr;
}
