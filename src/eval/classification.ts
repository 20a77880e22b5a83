import { DataError } from '../util/errors.js';

/**
 * Classification metrics. Logits are row-major [n, k] (k = `numClasses`), labels are class
 * indices 0..k−1. Ranking rule, used everywhere here: a class ranks above another when
 * its score is higher, or equal with a lower class index — so the prediction is the
 * lowest-index class among the top scores, and top-k takes lower indices first on ties.
 * A NaN logit is refused (DataError naming the sample) rather than silently ranked.
 */

/** Every metric of one evaluation, JSON-able (NaN, for an empty class, is written as null). */
export interface ClassificationMetrics {
  /** Fraction of samples whose top-ranked class is the label. */
  acc1: number;
  /** Fraction whose label is among the 5 top-ranked classes (1 when k <= 5). */
  acc5: number;
  /** Accuracy per class, i.e. recall (NaN for a class with no sample). */
  perClass: number[];
  /** Samples per true class. */
  support: number[];
  /** confusion[true][predicted] counts (rows: true class). */
  confusion: number[][];
  /** Number of samples. */
  count: number;
  numClasses: number;
}

/** Checks the sizes, labels and logits; returns n. */
function check(logits: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): number {
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new DataError(`number of classes must be an integer >= 1, got ${numClasses}`);
  const n = labels.length;
  if (n === 0) throw new DataError('no samples to evaluate');
  if (logits.length !== n * numClasses) {
    throw new DataError(
      `logits have ${logits.length} values, ${n} labels x ${numClasses} classes need ${n * numClasses}`,
    );
  }
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < numClasses))
      throw new DataError(`label ${y} of sample ${i} is outside 0..${numClasses - 1}`);
    for (let c = 0; c < numClasses; c++)
      if (Number.isNaN(logits[i * numClasses + c]!))
        throw new DataError(`logit of class ${c} of sample ${i} is NaN`);
  }
  return n;
}

/** 0-based rank of class `y` in row `i` (classes above it by score, then by index). */
function rankOf(logits: ArrayLike<number>, i: number, k: number, y: number): number {
  const off = i * k;
  const s = logits[off + y]!;
  let rank = 0;
  for (let c = 0; c < k; c++) {
    const x = logits[off + c]!;
    if (x > s || (x === s && c < y)) rank++;
  }
  return rank;
}

/**
 * Predicted class of each sample: the highest logit, the lowest index on ties.
 * @param logits - [n, numClasses] row-major
 * @param numClasses - k
 * @example
 * predictions(Float32Array.from([1, 3, 3, 0]), 2); // Int32Array [1, 0]
 */
export function predictions(logits: ArrayLike<number>, numClasses: number): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new DataError(`number of classes must be an integer >= 1, got ${numClasses}`);
  const n = logits.length / numClasses;
  if (!Number.isInteger(n))
    throw new DataError(`logits have ${logits.length} values, not a multiple of ${numClasses}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < numClasses; c++) {
      const x = logits[i * numClasses + c]!;
      if (Number.isNaN(x)) throw new DataError(`logit of class ${c} of sample ${i} is NaN`);
      if (x > logits[i * numClasses + best]!) best = c;
    }
    out[i] = best;
  }
  return out;
}

/**
 * Top-k accuracy: the fraction of samples whose label ranks among the k best classes
 * (ties broken towards lower class indices).
 * @param logits - [n, numClasses] row-major
 * @param labels - n class indices
 * @param numClasses - number of classes
 * @param k - how many top classes count (>= 1)
 * @example
 * topKAccuracy([0, 2, 1, 5, 0, 1], [2, 1], 3, 2); // 0.5: label 2 ranks 2nd in row 0, label 1 3rd in row 1
 */
export function topKAccuracy(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  k: number,
): number {
  if (!Number.isInteger(k) || k < 1) throw new DataError(`top-k needs an integer k >= 1, got ${k}`);
  const n = check(logits, labels, numClasses);
  let hits = 0;
  for (let i = 0; i < n; i++) if (rankOf(logits, i, numClasses, labels[i]!) < k) hits++;
  return hits / n;
}

/**
 * Confusion matrix: `confusion[t][p]` counts samples of true class t predicted as p.
 * @param logits - [n, numClasses] row-major
 * @param labels - n class indices
 * @param numClasses - number of classes
 * @example
 * confusionMatrix([1, 0, 1, 0], [0, 1], 2); // [[1, 0], [1, 0]]
 */
export function confusionMatrix(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[][] {
  const n = check(logits, labels, numClasses);
  const pred = predictions(logits, numClasses);
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < n; i++) m[labels[i]!]![pred[i]!]!++;
  return m;
}

/**
 * Accuracy of each true class from a confusion matrix: diagonal over row sum (NaN for a
 * class without samples).
 * @param confusion - rows: true class, columns: predicted class
 * @example
 * perClassAccuracy([[3, 1], [0, 0]]); // [0.75, NaN]
 */
export function perClassAccuracy(confusion: number[][]): number[] {
  return confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total ? row[c]! / total : Number.NaN;
  });
}

/**
 * All classification metrics in one JSON-able object (acc@1, acc@5, per-class accuracy,
 * support, confusion matrix).
 * @param logits - [n, numClasses] row-major
 * @param labels - n class indices
 * @param numClasses - number of classes
 * @example
 * classificationMetrics(Float32Array.from([2, 1, 0, 0, 1, 2]), [0, 2], 3).acc1; // 1
 */
export function classificationMetrics(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): ClassificationMetrics {
  const n = check(logits, labels, numClasses);
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const r = rankOf(logits, i, numClasses, labels[i]!);
    if (r === 0) top1++;
    if (r < 5) top5++;
  }
  const confusion = confusionMatrix(logits, labels, numClasses);
  return {
    acc1: top1 / n,
    acc5: top5 / n,
    perClass: perClassAccuracy(confusion),
    support: confusion.map((row) => row.reduce((a, b) => a + b, 0)),
    confusion,
    count: n,
    numClasses,
  };
}
