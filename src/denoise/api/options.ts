// What the one-call functions (fit, verify, inspect, study) share: their common
// options, the image options, and the checks that turn a bad option into a UsageError
// naming the flag, as the command line names it.
import type { ImageInputOptions } from '../../data/model-inputs.js';
import { UsageError } from '../../util/errors.js';
import { checkRange } from '../../util/ranges.js';
import type { ProgressEvent } from '../pipeline.js';

/** Options every one-call function takes. */
export interface CommonOptions {
  /** Seed of every random draw (default 0). Same seed, same numbers. */
  seed?: number;
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /** Called as the work advances: images of the statistics pass, epochs of training, stages. */
  onProgress?: (e: ProgressEvent) => void;
}

/** Where a command's images come from, and how they are sized and normalised. */
export interface ImageOptions {
  /** A folder of .png/.jpg images, or several folders merged into one set. */
  images?: string | string[];
  /** Fashion-MNIST images: `'embedded'` (the committed subset), `'fashion-mnist'` or an IDX folder. */
  data?: string;
  /** Input size: `[h, w]`, or one number for a square (default: the model's input size). */
  size?: number | number[];
  /** Image channels, 1 or 3 (default: from the model). */
  channels?: number;
  /** Per-channel mean subtracted after scaling pixels to [0, 1] (one value: every channel). */
  mean?: number | number[];
  /** Per-channel std divided after the mean. */
  std?: number | number[];
  /** Skip images that fail to decode (and count them) instead of failing. */
  skipCorrupt?: boolean;
}

/** `fromStats` in CLI spelling for messages: `batchSize` → `--batch-size`. */
export function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** A value as an error message shows it (objects as JSON rather than [object Object]). */
function shown(v: unknown): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/**
 * A numeric option in its flag's range (src/util/ranges.ts, the table the command line
 * uses too), or absent; else a UsageError naming the flag, the range and the value.
 */
export function checkRanged(option: string, v: unknown): void {
  if (v !== undefined) checkRange(flagOf(option), v === null ? 'null' : v);
}

/** A string option (or absent), else a UsageError naming its flag. */
export function checkString(option: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'string')
    throw new UsageError(`${flagOf(option)} must be a string, got '${shown(v)}'`);
}

/**
 * A list of 1 to `maxCount` numbers, each in the flag's range (one number counts as a list
 * of one), or absent.
 */
export function numberList(option: string, v: unknown, maxCount: number): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = Array.isArray(v) ? (v as unknown[]) : [v];
  if (xs.length === 0 || xs.length > maxCount)
    throw new UsageError(
      `${flagOf(option)} takes 1 to ${maxCount} numbers, got '${xs.map(shown).join(',')}'`,
    );
  for (const x of xs) checkRange(flagOf(option), typeof x === 'number' ? x : String(x));
  return xs as number[];
}

/** Checks the common options; returns seed and threads. */
export function commonSettings(o: CommonOptions): { seed: number; threads?: number } {
  checkRanged('seed', o.seed);
  checkRanged('threads', o.threads);
  return { seed: o.seed ?? 0, threads: o.threads };
}

/** Checks the image options and puts them in the form the image loader takes. */
export function imageSettings(o: ImageOptions): ImageInputOptions {
  const images = o.images === undefined ? [] : [o.images].flat();
  for (const f of images)
    if (typeof f !== 'string' || f === '')
      throw new UsageError(`--images must name folders, got '${String(f)}'`);
  checkString('data', o.data);
  checkRanged('channels', o.channels);
  return {
    images: o.images === undefined ? undefined : images,
    data: o.data,
    size: numberList('size', o.size, 2),
    channels: o.channels,
    mean: numberList('mean', o.mean, 3),
    std: numberList('std', o.std, 3),
    skipCorrupt: o.skipCorrupt ?? false,
  };
}
