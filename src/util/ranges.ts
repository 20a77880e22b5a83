// The one table of numeric option ranges, shared by the command line (src/cli/common.ts,
// which also prints each range in --help) and the one-call functions (src/denoise/api/),
// so that `--epochs 1e12` and `fit(m, { epochs: 1e12 })` fail alike: a UsageError naming
// the flag, before any work. Bounds are generous limits of sense, not tuning advice; each
// one keeps a typo (an extra digit, a misplaced exponent) from hanging or exhausting the
// machine, or from silently training a model no one asked for.
import { availableParallelism } from 'node:os';
import { UsageError } from './errors.js';

/** An accepted interval of a numeric option; an absent bound is no bound (values are always finite). */
export interface Range {
  /** Only integers. */
  int?: boolean;
  /** Smallest accepted value (inclusive). */
  min?: number;
  /** Values must be greater than this. */
  minExclusive?: number;
  /** Largest accepted value (inclusive). */
  max?: number;
  /** Values must be smaller than this. */
  maxExclusive?: number;
}

/**
 * ONNX Runtime threads beyond four per core only add contention; far beyond, session
 * creation allocates a thread pool so large that `fit --threads 100000` hung.
 */
export const MAX_THREADS = availableParallelism() * 4;

const EPOCHS: Range = { int: true, min: 1, max: 10_000 };
const BATCH: Range = { int: true, min: 1, max: 65_536 };
// Learning rates: any positive size, up to one that can only diverge (and is still
// accepted, so that the non-finite-loss stop can be exercised with `--lr 1e6`).
const LR: Range = { minExclusive: 0, max: 1e6 };
const PROBABILITY: Range = { min: 0, max: 1 };
const WEIGHT: Range = { min: 0, max: 1000 };
/** A number of images; 0 means all of them. */
const IMAGES: Range = { int: true, min: 0, max: 100_000_000 };
const SIDE: Range = { int: true, min: 1, max: 16_384 };
/** A diffusion step: 0 (the clean input) up to the largest schedule allowed. */
const DIFFUSION_STEP: Range = { int: true, min: 0, max: 100_000 };

/**
 * Every numeric flag of every command, by its command-line name. One flag has one range
 * in every command that takes it.
 */
export const RANGES = {
  // Common to every command.
  '--seed': { int: true, min: 0, max: Number.MAX_SAFE_INTEGER },
  '--threads': { int: true, min: 1, max: MAX_THREADS },
  // Training.
  '--epochs': EPOCHS,
  '--phase-epochs': EPOCHS,
  '--warmup-epochs': { min: 0, max: EPOCHS.max },
  '--eval-every': { int: true, min: 0, max: EPOCHS.max },
  '--checkpoint-every': { int: true, min: 0, max: 10_000_000 },
  '--batch-size': BATCH,
  '--lr': LR,
  '--backbone-lr': LR,
  '--min-lr': { min: 0, max: LR.max },
  '--weight-decay': { min: 0, max: 10 },
  '--label-smoothing': { min: 0, maxExclusive: 1 },
  '--random-erasing': PROBABILITY,
  '--clip-norm': { minExclusive: 0, max: 1e6 },
  '--triplet-weight': WEIGHT,
  '--denoise-weight': WEIGHT,
  '--ridge': { min: 0, max: 1e6 },
  '--workers': { int: true, min: 0, max: 64 },
  // The diffusion schedule (beta_t is a variance fraction, so strictly inside (0, 1)).
  '--diffusion-steps': { int: true, min: 1, max: 100_000 },
  '--beta-start': { minExclusive: 0, maxExclusive: 1 },
  '--beta-end': { minExclusive: 0, maxExclusive: 1 },
  // A multiple of the paper's betas (the schedule refuses one that takes a beta to 1).
  '--noise-scale': { minExclusive: 0, max: 10_000 },
  // Diffusion models (sample, probe, pretrain --model ddpm-*). Steps are checked again
  // against the model's own T once it is read.
  '--ema-decay': { min: 0, maxExclusive: 1 },
  '--n': { int: true, min: 1, max: 1_000_000 },
  '--steps': { int: true, min: 1, max: DIFFUSION_STEP.max },
  '--eta': PROBABILITY,
  '--grid': { int: true, min: 1, max: 10_000 },
  '--t': DIFFUSION_STEP,
  '--ts': DIFFUSION_STEP,
  '--pool-grid': { int: true, min: 1, max: SIDE.max },
  '--heads': { int: true, min: 1, max: 1024 },
  // Images.
  '--size': SIDE,
  '--channels': { int: true, min: 1, max: 3 },
  '--mean': { min: -1000, max: 1000 },
  '--std': { minExclusive: 0, max: 1000 },
  // Verification.
  '--tolerance': { minExclusive: 0, max: 1 },
  '--batch': BATCH,
  '--runs': { int: true, min: 1, max: 100_000 },
  '--latency-budget': { minExclusive: 0, max: 86_400 },
  // The demo and the study.
  '--seeds': { int: true, min: 1, max: 20 },
  '--severities': { int: true, min: 1, max: 5 },
  '--noise-scales': { minExclusive: 0, max: 10_000 },
  '--train-images': IMAGES,
  '--val-images': IMAGES,
  '--moment-images': IMAGES,
  '--test-images': IMAGES,
  '--corrupted-images': { int: true, min: 1, max: IMAGES.max },
  '--queries-per-class': { int: true, min: 1, max: 100_000 },
} as const satisfies Record<string, Range>;

/** A flag with a range in {@link RANGES}. */
export type RangedFlag = keyof typeof RANGES;

/** `--seed`'s upper bound, 2^53 − 1, reads better as a power of two. */
function bound(x: number): string {
  return x === Number.MAX_SAFE_INTEGER ? '2^53-1' : String(x);
}

/** A range in interval notation: `[1, 65536]`, `[0, 1)`, `(0, 10]`. */
export function intervalText(r: Range): string {
  const lo =
    r.minExclusive !== undefined
      ? `(${r.minExclusive}`
      : r.min !== undefined
        ? `[${bound(r.min)}`
        : '(-inf';
  const hi =
    r.maxExclusive !== undefined
      ? `${r.maxExclusive})`
      : r.max !== undefined
        ? `${bound(r.max)}]`
        : 'inf)';
  return `${lo}, ${hi}`;
}

/** A range as --help shows it: `integer in [1, 65536]`, `number in [0, 1)`. */
export function rangeText(r: Range): string {
  return `${r.int ? 'integer' : 'number'} in ${intervalText(r)}`;
}

/** Whether a number lies in a range (NaN and infinities never do). */
export function inRange(v: number, r: Range): boolean {
  if (!Number.isFinite(v)) return false;
  if (r.int && !Number.isInteger(v)) return false;
  if (r.min !== undefined && v < r.min) return false;
  if (r.minExclusive !== undefined && v <= r.minExclusive) return false;
  if (r.max !== undefined && v > r.max) return false;
  if (r.maxExclusive !== undefined && v >= r.maxExclusive) return false;
  return true;
}

/**
 * Checks one value against a range, else throws a UsageError naming the flag, its range
 * and the value given: `--epochs must be an integer in [1, 10000], got '1e12'`.
 * @param flag - the command-line name, e.g. `--batch-size`
 * @param v - the value (a string from the command line is read as a number first)
 * @param r - the accepted range (default: the flag's entry in {@link RANGES})
 * @returns the value as a number
 */
export function checkRange(flag: string, v: unknown, r: Range = rangeOf(flag)): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !inRange(n, r))
    throw new UsageError(
      `${flag} must be ${r.int ? 'an integer' : 'a number'} in ${intervalText(r)}, got '${String(v)}'`,
    );
  return n;
}

/** A flag's range from {@link RANGES}; a flag missing there is a programming error. */
export function rangeOf(flag: string): Range {
  const r = (RANGES as Record<string, Range>)[flag];
  if (!r) throw new Error(`no range is declared for ${flag} (src/util/ranges.ts)`);
  return r;
}
