/**
 * Bounds on what a model may declare, checked before anything is allocated from a
 * declared size: a rank above {@link MAX_RANK}, a dimension that is not a safe integer,
 * or a tensor whose static size exceeds the machine's memory cannot be run here, and a
 * crafted file must not make shape inference allocate `Array(2^32)`.
 */
import { totalmem } from 'node:os';
import { ModelError } from '../util/errors.js';
import { DTYPE_SIZE, type DType } from './dtype.js';
import type { Dim } from './ir.js';

/** The highest tensor rank accepted (ONNX Runtime's own kernels stop well below this). */
export const MAX_RANK = 64;

/**
 * The largest tensor, in bytes, a declared or inferred static shape may describe: the
 * machine's physical memory. A tensor bigger than that can never be materialised, so a
 * shape that asks for it is a malformed or hostile model, not a big one.
 */
export function maxTensorBytes(): number {
  return totalmem();
}

/**
 * Checks a declared or inferred shape: rank at most {@link MAX_RANK}, every numeric dim
 * a safe non-negative integer, and the static part of the shape small enough to fit in
 * memory. Throws a ModelError starting with `what` (which names the value and its node).
 * @param what - e.g. `m.onnx: graph input 'x'` or `node 'r' (Reshape) output 'y'`
 * @param dtype - element type (for the byte count)
 * @param shape - dims; null (unknown rank) passes
 * @example
 * checkShapeBounds("graph input 'x'", 'float32', [1, 3, 224, 224]);
 */
export function checkShapeBounds(what: string, dtype: DType, shape: readonly Dim[] | null): void {
  if (!shape) return;
  if (shape.length > MAX_RANK)
    throw new ModelError(`${what} has rank ${shape.length}, over the limit of ${MAX_RANK}`);
  let bytes = DTYPE_SIZE[dtype];
  for (const d of shape) {
    if (typeof d !== 'number') continue;
    if (!Number.isSafeInteger(d) || d < 0)
      throw new ModelError(`${what} has an invalid dimension ${d} in [${fmt(shape)}]`);
    bytes *= d;
  }
  if (bytes > maxTensorBytes()) {
    throw new ModelError(
      `${what} has shape [${fmt(shape)}] (${dtype}): ${gb(bytes)} GB, more than this machine's ${gb(maxTensorBytes())} GB of memory`,
    );
  }
}

/**
 * Checks a rank read from a value (the length of a shape tensor) before an array of that
 * length is made. Throws a ModelError starting with `what`.
 */
export function checkRank(what: string, rank: number): void {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank > MAX_RANK)
    throw new ModelError(`${what}: rank ${rank} is over the limit of ${MAX_RANK}`);
}

function fmt(shape: readonly Dim[]): string {
  const parts = shape.slice(0, 8).map((d) => (d === null ? '?' : String(d)));
  return shape.length > 8 ? `${parts.join(',')},… (${shape.length} dims)` : parts.join(',');
}

function gb(bytes: number): string {
  const x = bytes / 2 ** 30;
  return x >= 100 ? Math.round(x).toString() : x.toPrecision(3);
}
