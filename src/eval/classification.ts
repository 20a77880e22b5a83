import { DataError } from '../errors.js';

export interface ClassificationMetrics {
  /** Fraction of samples whose top-scoring class is the label. */
  acc1: number;
  /** Fraction whose label is among the 5 top-scoring classes (ties: lower index first). */
  acc5: number;
  /** Accuracy per class (NaN for a class with no sample). */
  perClass: number[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  count: number;
}

/**
 * Classification metrics from logits [n, k] (row-major) and labels.
 * @example
 * classificationMetrics(Float32Array.from([2, 1, 0, 0, 1, 2]), [0, 2], 3).acc1; // 1
 */
export function classificationMetrics(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): ClassificationMetrics {
  const n = labels.length;
  if (logits.length !== n * numClasses) {
    throw new DataError(
      `logits have ${logits.length} values, ${n} labels x ${numClasses} classes need ${n * numClasses}`,
    );
  }
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < numClasses))
      throw new DataError(`label ${y} of sample ${i} is outside 0..${numClasses - 1}`);
    const row = (c: number) => logits[i * numClasses + c]!;
    // Rank of the true class: classes scoring higher, or equal with a lower index.
    const s = row(y);
    let rank = 0;
    let best = 0;
    for (let c = 0; c < numClasses; c++) {
      if (row(c) > s || (row(c) === s && c < y)) rank++;
      if (row(c) > row(best)) best = c;
    }
    confusion[y]![best]!++;
    if (rank === 0) top1++;
    if (rank < 5) top5++;
  }
  const perClass = confusion.map((r, c) => {
    const tot = r.reduce((a, b) => a + b, 0);
    return tot ? r[c]! / tot : Number.NaN;
  });
  return { acc1: top1 / n, acc5: top5 / n, perClass, confusion, count: n };
}
