/**
 * Paired statistics for comparing two models on the same test items: a paired bootstrap
 * over items (images for accuracy, queries for mAP), the exact McNemar test, and Student
 * t-intervals across seeds, with the special functions they need (log-gamma, the
 * regularised incomplete beta function, Student's t distribution and its quantiles).
 *
 * Conventions: a difference is always `a − b` (the arm minus its control); intervals are
 * two-sided at `level` (default 0.95); an interval that contains 0 means "no detectable
 * difference" at that level ({@link verdict}).
 */
import { DataError, UsageError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/** A point estimate with a two-sided interval. */
export interface Interval {
  mean: number;
  /** [lo, hi]; null when no interval can be formed (one seed for a t-interval). */
  ci: [number, number] | null;
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1))
    throw new UsageError(`confidence level must be in (0, 1), got ${level}`);
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}

/**
 * Quantile of sorted values with linear interpolation between order statistics (R's and
 * NumPy's default, "type 7"): position p·(n − 1).
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) throw new DataError('quantile of no values');
  const pos = p * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Options of the bootstrap functions. */
export interface BootstrapOptions {
  /** Resamples (default 2,000; at least 1,000). */
  resamples?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: number;
  /** Two-sided level (default 0.95). */
  level?: number;
}

/** Result of a bootstrap: the estimate on the full sample and a percentile interval. */
export interface BootstrapResult {
  mean: number;
  ci: [number, number];
  resamples: number;
  /** Items resampled. */
  n: number;
}

/**
 * Percentile bootstrap of the mean of `values`: `resamples` times, draw n items with
 * replacement (seeded) and take their mean; the interval is the (1 − level)/2 and
 * (1 + level)/2 quantiles of those means.
 * @param values - one number per item (1/0 for correct/wrong, or an AP per query)
 * @param opts - resamples, seed, level
 * @example
 * bootstrapMean([1, 0, 1, 1], { seed: 0 }).ci;
 */
export function bootstrapMean(
  values: ArrayLike<number>,
  opts: BootstrapOptions = {},
): BootstrapResult {
  const n = values.length;
  if (n === 0) throw new DataError('bootstrap of an empty sample');
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  checkLevel(level);
  if (!Number.isInteger(resamples) || resamples < 1000)
    throw new UsageError(`bootstrap resamples must be an integer >= 1000, got ${resamples}`);
  for (let i = 0; i < n; i++)
    if (!Number.isFinite(values[i]!)) throw new DataError(`bootstrap: value ${i} is ${values[i]}`);
  const rng = new Rng(opts.seed ?? 0).fork('bootstrap');
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(n)]!;
    stats[r] = s / n;
  }
  stats.sort();
  const alpha = (1 - level) / 2;
  return {
    mean: mean(values),
    ci: [quantileSorted(stats, alpha), quantileSorted(stats, 1 - alpha)],
    resamples,
    n,
  };
}

/**
 * Paired bootstrap of the difference of means `mean(a) − mean(b)` over the same items:
 * each resample draws items (not a and b separately), so what the two models share (easy
 * and hard images) cancels, and the interval reflects only their disagreements.
 * @param a - per-item scores of the first model (e.g. 1 if image i is classified right)
 * @param b - the second model's scores on the same items, in the same order
 * @param opts - resamples (>= 1,000), seed, level
 * @example
 * const d = pairedBootstrap(armCorrect, controlCorrect, { seed: 0 });
 * verdict(d); // 'no detectable difference' when d.ci contains 0
 */
export function pairedBootstrap(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  opts: BootstrapOptions = {},
): BootstrapResult {
  if (a.length !== b.length)
    throw new DataError(
      `paired bootstrap: ${a.length} scores against ${b.length}; pairs need the same items`,
    );
  const d = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i]! - b[i]!;
  return bootstrapMean(d, opts);
}

/**
 * Natural log of the gamma function, x > 0 (Lanczos approximation, g = 7, 9 terms:
 * relative error about 1e-15), with the reflection formula below 0.5.
 */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma: x must be > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  const z = x - 1;
  let s = c[0]!;
  for (let i = 1; i < 9; i++) s += c[i]! / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/**
 * Continued fraction of the incomplete beta function (modified Lentz): with
 * d_{2m+1} = −(a+m)(a+b+m) x / ((a+2m)(a+2m+1)) and d_{2m} = m(b−m) x / ((a+2m−1)(a+2m)),
 * I_x(a, b) = x^a (1−x)^b / (a B(a, b)) · 1 / (1 + d_1 / (1 + d_2 / (1 + ...))).
 */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/**
 * The regularised incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for
 * 0 <= x <= 1 and a, b > 0. The continued fraction converges fast for x < (a+1)/(a+b+2);
 * above that the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) is used.
 * @example regularizedIncompleteBeta(0.3, 1, 1) // 0.3
 */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0))
    throw new RangeError(`incomplete beta: a and b must be > 0, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incomplete beta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront =
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/**
 * CDF of Student's t distribution with `df` degrees of freedom:
 * P(T <= t) = 1 − I_{df/(df+t²)}(df/2, 1/2) / 2 for t >= 0, symmetric below 0.
 * @example studentTCdf(0, 5) // 0.5
 */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`t distribution: df must be > 0, got ${df}`);
  if (Number.isNaN(t)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * Quantile of Student's t distribution: the t with P(T <= t) = p. Solved from the CDF by
 * bisection on a bracket that doubles until it holds p, then refined to float64 precision.
 * @param p - probability in (0, 1)
 * @param df - degrees of freedom (> 0)
 * @example studentTQuantile(0.975, 2) // 4.302652729...
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`t quantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`t quantile: df must be > 0, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return Infinity;
  }
  // Bisection: 200 halvings take any bracket below the spacing of float64 numbers.
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Result of {@link tInterval}. */
export interface TInterval extends Interval {
  /** Sample standard deviation (n − 1 in the denominator); NaN for one value. */
  sd: number;
  n: number;
  /** Degrees of freedom, n − 1. */
  df: number;
  /** The t quantile used, t_{(1+level)/2, n−1}. */
  tQuantile: number;
}

/**
 * Student t-interval for the mean of a few values (e.g. one result per seed):
 * mean ± t_{(1+level)/2, n−1} · sd / √n. With one value the interval is null.
 * @param xs - the values
 * @param level - two-sided level (default 0.95)
 * @example tInterval([1, 2, 3]).ci // [2 − 4.303/√3, 2 + 4.303/√3]
 */
export function tInterval(xs: readonly number[], level = 0.95): TInterval {
  checkLevel(level);
  const n = xs.length;
  if (n === 0) throw new DataError('t-interval of no values');
  for (const x of xs) if (!Number.isFinite(x)) throw new DataError(`t-interval: value ${x}`);
  const m = mean(xs);
  if (n === 1) return { mean: m, ci: null, sd: NaN, n, df: 0, tQuantile: NaN };
  let ss = 0;
  for (const x of xs) ss += (x - m) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  const q = studentTQuantile((1 + level) / 2, n - 1);
  const half = (q * sd) / Math.sqrt(n);
  return { mean: m, ci: [m - half, m + half], sd, n, df: n - 1, tQuantile: q };
}

/** Result of {@link mcnemarExact}. */
export interface McNemarResult {
  /** Items the first model gets right and the second wrong. */
  b: number;
  /** Items the second model gets right and the first wrong. */
  c: number;
  /** Two-sided exact p-value: 2 · P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1. */
  pValue: number;
}

/**
 * The exact McNemar test of two models on the same items: under the null (equal
 * accuracy), each discordant item is equally likely to favour either model, so
 * b ~ Binomial(b + c, 1/2). Only the discordant items matter.
 * @param a - per-item correctness of the first model (truthy = right)
 * @param bCorrect - the second model's, same items
 * @example mcnemarExact([1, 1, 0, 1], [0, 1, 0, 0]).pValue // b = 2, c = 0: 2 · (1/4) = 0.5
 */
export function mcnemarExact(
  a: ArrayLike<number | boolean>,
  bCorrect: ArrayLike<number | boolean>,
): McNemarResult {
  if (a.length !== bCorrect.length)
    throw new DataError(
      `McNemar: ${a.length} results against ${bCorrect.length}; pairs need the same items`,
    );
  let b = 0;
  let c = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && !bCorrect[i]) b++;
    else if (!a[i] && bCorrect[i]) c++;
  }
  return { b, c, pValue: mcnemarFromCounts(b, c) };
}

/**
 * Exact two-sided McNemar p-value from the discordant counts, summed in log space so that
 * thousands of discordant items do not underflow.
 * @example mcnemarFromCounts(1, 6) // 2 · (1 + 7) / 128 = 0.125
 */
export function mcnemarFromCounts(b: number, c: number): number {
  for (const [k, v] of [
    ['b', b],
    ['c', c],
  ] as const)
    if (!Number.isInteger(v) || v < 0)
      throw new UsageError(`McNemar count ${k} must be an integer >= 0, got ${v}`);
  const n = b + c;
  if (n === 0) return 1;
  const k = Math.min(b, c);
  const lnHalfN = n * Math.log(0.5);
  const lnFactN = logGamma(n + 1);
  let tail = 0;
  for (let j = 0; j <= k; j++)
    tail += Math.exp(lnFactN - logGamma(j + 1) - logGamma(n - j + 1) + lnHalfN);
  return Math.min(1, 2 * tail);
}

/** What an interval of a difference says, in words. */
export type Verdict = 'no detectable difference' | 'higher' | 'lower' | 'unknown';

/**
 * Reads an interval of a difference (a − b): "no detectable difference" when it contains
 * 0, "higher" or "lower" when it lies wholly above or below 0, "unknown" without interval.
 * @example verdict({ mean: 0.2, ci: [-0.1, 0.5] }) // 'no detectable difference'
 */
export function verdict(d: Interval): Verdict {
  if (!d.ci) return 'unknown';
  const [lo, hi] = d.ci;
  if (lo <= 0 && hi >= 0) return 'no detectable difference';
  return lo > 0 ? 'higher' : 'lower';
}

/**
 * A difference as text: `+0.31 [−0.05, +0.67] no detectable difference`, values multiplied
 * by `scale` (100 for fractions shown in points).
 * @example describeDifference({ mean: 0.012, ci: [0.004, 0.02] }, 100) // '+1.20 [+0.40, +2.00] higher'
 */
export function describeDifference(d: Interval, scale = 1, digits = 2): string {
  const f = (x: number) => `${x * scale >= 0 ? '+' : '−'}${Math.abs(x * scale).toFixed(digits)}`;
  const ci = d.ci ? ` [${f(d.ci[0])}, ${f(d.ci[1])}]` : '';
  return `${f(d.mean)}${ci} ${verdict(d)}`;
}

/**
 * Quantile function of the standard normal distribution (Acklam's rational approximation,
 * relative error below 1.2e-9 over (0, 1)).
 * @example normalQuantile(0.975) // 1.959963985
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new UsageError(`normal quantile needs p in (0, 1), got ${p}`);
  const a = [
    -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2,
    -3.066479806614716e1, 2.506628277459239,
  ] as const;
  const b = [
    -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1,
    -1.328068155288572e1,
  ] as const;
  const c = [
    -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ] as const;
  const d = [
    7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416,
  ] as const;
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  const pLow = 0.02425;
  if (p < pLow) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - pLow) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/**
 * Wilson score interval of a proportion: k successes in n trials (acc@1 of one model on
 * n test images, where the images are the only source of variation).
 * @example wilsonInterval(8, 10) // { mean: 0.8, ci: [0.4902, 0.9433] }
 */
export function wilsonInterval(k: number, n: number, level = 0.95): Interval {
  checkLevel(level);
  if (!Number.isInteger(n) || n <= 0 || !Number.isInteger(k) || k < 0 || k > n)
    throw new UsageError(`a proportion needs integers 0 <= k <= n, n > 0; got k=${k}, n=${n}`);
  const z = normalQuantile(1 - (1 - level) / 2);
  const p = k / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n));
  return { mean: p, ci: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}
