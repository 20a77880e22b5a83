/**
 * Per-layer diagnostics of a denoiser: how the fused map M = c3 I - c1 Wd scales feature
 * directions (its singular values: below 1 shrinks, above 1 amplifies) and how much fusion
 * changed the layer's weight.
 */
import { UsageError } from '../util/errors.js';
import { denoiseMap, type FuseCoefficients } from './fuse-math.js';
import {
  asymmetry,
  frobeniusNorm,
  type NumArray,
  singularValues,
  symmetricEigenvalues,
} from './linalg.js';

/** Summary of the singular values of M. */
export interface ShrinkSummary {
  count: number;
  min: number;
  max: number;
  mean: number;
  /** directions with singular value < 1 - shrinkThreshold (default: shrunk by more than 1%) */
  shrunk: number;
}

/** Diagnostics of one layer. */
export interface LayerDiagnostics {
  /** singular values of c3 I - c1 Wd, descending */
  singularValues: Float64Array;
  summary: ShrinkSummary;
  /** ||W' - W||_F / ||W||_F, when both weights were given */
  relativeWeightChange?: number;
  /** whether Wd was treated as symmetric (eigenvalues used) */
  symmetric: boolean;
}

/**
 * Singular values (descending) of M = c3 I - c1 Wd. When Wd is symmetric (the closed-form
 * fit is) M is symmetric and its singular values are the absolute eigenvalues, computed
 * without squaring; otherwise via the eigenvalues of MᵀM.
 * @param wd - denoiser weight, n x n
 * @param n - size
 * @param coeffs - c1, c3
 * @example denoiseMapSingularValues(fit.Wd, 64, coefficients(schedule, 3));
 */
export function denoiseMapSingularValues(
  wd: NumArray,
  n: number,
  coeffs: Pick<FuseCoefficients, 'c1' | 'c3'>,
): { values: Float64Array; symmetric: boolean } {
  if (wd.length !== n * n)
    throw new UsageError(`denoiser weight has ${wd.length} values, expected ${n * n}`);
  const m = denoiseMap(wd, n, coeffs);
  const symmetric = asymmetry(wd, n) <= 1e-12;
  if (!symmetric) return { values: singularValues(m, n), symmetric };
  const ev = symmetricEigenvalues(m, n);
  const values = Float64Array.from(ev, Math.abs).sort().reverse();
  return { values, symmetric };
}

/**
 * Relative weight change ||W' - W||_F / ||W||_F (Infinity if W is zero and W' is not).
 * @param before - original weight
 * @param after - fused weight (same length)
 * @example relativeWeightChange([1, 0], [1, 0.1]) // 0.1
 */
export function relativeWeightChange(before: ArrayLike<number>, after: ArrayLike<number>): number {
  if (before.length !== after.length) {
    throw new UsageError(
      `relativeWeightChange: lengths ${before.length} and ${after.length} differ`,
    );
  }
  const diff = new Float64Array(before.length);
  for (let i = 0; i < before.length; i++) diff[i] = after[i]! - before[i]!;
  const dn = frobeniusNorm(diff);
  const bn = frobeniusNorm(before);
  if (bn === 0) return dn === 0 ? 0 : Number.POSITIVE_INFINITY;
  return dn / bn;
}

/**
 * Min / max / mean of singular values and how many are below 1 - shrinkThreshold.
 * @param sv - singular values
 * @param shrinkThreshold - relative shrink counted (default 0.01)
 * @example summariseSingularValues(new Float64Array([1, 0.5])) // { min: 0.5, max: 1, mean: 0.75, shrunk: 1, count: 2 }
 */
export function summariseSingularValues(
  sv: ArrayLike<number>,
  shrinkThreshold = 0.01,
): ShrinkSummary {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let shrunk = 0;
  for (let i = 0; i < sv.length; i++) {
    const v = sv[i]!;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    if (v < 1 - shrinkThreshold) shrunk++;
  }
  return { count: sv.length, min, max, mean: sv.length ? sum / sv.length : Number.NaN, shrunk };
}

/**
 * All diagnostics of one layer's denoiser.
 * @param opts - Wd (n x n), coefficients, optionally the weight before and after fusion
 * @example layerDiagnostics({ wd: fit.Wd, n: 64, coeffs, weight: w, fusedWeight: f.weight });
 */
export function layerDiagnostics(opts: {
  wd: NumArray;
  n: number;
  coeffs: Pick<FuseCoefficients, 'c1' | 'c3'>;
  weight?: NumArray;
  fusedWeight?: NumArray;
  shrinkThreshold?: number;
}): LayerDiagnostics {
  const { values, symmetric } = denoiseMapSingularValues(opts.wd, opts.n, opts.coeffs);
  const out: LayerDiagnostics = {
    singularValues: values,
    summary: summariseSingularValues(values, opts.shrinkThreshold),
    symmetric,
  };
  if (opts.weight && opts.fusedWeight)
    out.relativeWeightChange = relativeWeightChange(opts.weight, opts.fusedWeight);
  return out;
}
