/**
 * Reference computations used only by the tests: the unfused denoising steps that fusion
 * must reproduce, a plain Linear forward, and the denoising losses written out directly
 * (L1 + MSE per element; the expected MSE of a linear predictor from data moments).
 */
import type { MomentAccumulator, NoiseScales } from '../../src/denoise/closed-form.js';
import type {
  ChannelDenoiser,
  FuseCoefficients,
  LinearDenoiser,
  LinearLayout,
} from '../../src/denoise/fuse-math.js';
import type { NumArray } from '../../src/denoise/linalg.js';
import { ModelError, UsageError } from '../../src/util/errors.js';

function need(a: NumArray, n: number, what: string, name: string): void {
  if (a.length !== n)
    throw new ModelError(`layer '${name}': ${what} has ${a.length} values, expected ${n}`);
}

/**
 * Reference (unfused, deterministic) input-side denoising step on rows of x:
 * x' = c3 x - c1 (Wd (x + e) + bd). Optional `z` (same shape as x) adds c2 z.
 * @param x - inputs, nRows x dim, dim = denoiser.bd.length
 * @param nRows - number of rows
 * @param denoiser - Wd, bd, e
 * @param coeffs - c1, c3 (and c2 when z is given)
 * @param z - optional noise for the stochastic step
 * @example denoiseInputLinear(x, 16, { wd, bd, e }, coefficients(makeSchedule(), 3));
 */
export function denoiseInputLinear(
  x: NumArray,
  nRows: number,
  denoiser: LinearDenoiser,
  coeffs: FuseCoefficients,
  z?: NumArray,
): Float64Array {
  const d = denoiser.bd.length;
  need(x, nRows * d, 'input', 'denoiseInputLinear');
  if (z) need(z, nRows * d, 'noise z', 'denoiseInputLinear');
  const out = new Float64Array(nRows * d);
  const xe = new Float64Array(d);
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < d; j++) xe[j] = x[r * d + j]! + denoiser.e[j]!;
    for (let i = 0; i < d; i++) {
      let eps = denoiser.bd[i]!;
      for (let j = 0; j < d; j++) eps += denoiser.wd[i * d + j]! * xe[j]!;
      out[r * d + i] =
        coeffs.c3 * x[r * d + i]! - coeffs.c1 * eps + (z ? coeffs.c2 * z[r * d + i]! : 0);
    }
  }
  return out;
}

/**
 * Reference output-side channel denoising step on an NCHW tensor (or [batch, channels,
 * spatial]): y' = c3 y - c1 (Wd y + c), mixing channels at each position.
 * @param y - tensor, batch x channels x spatial
 * @param batch - batch size
 * @param channels - channel count (= Wd size)
 * @param spatial - H * W
 * @param denoiser - Wd, c
 * @param coeffs - c1, c3
 * @example denoiseOutputChannels(y, 2, 8, 16, { wd, c }, coeffs);
 */
export function denoiseOutputChannels(
  y: NumArray,
  batch: number,
  channels: number,
  spatial: number,
  denoiser: ChannelDenoiser,
  coeffs: FuseCoefficients,
): Float64Array {
  need(y, batch * channels * spatial, 'input', 'denoiseOutputChannels');
  need(denoiser.wd, channels * channels, 'denoiser weight', 'denoiseOutputChannels');
  const out = new Float64Array(y.length);
  for (let b = 0; b < batch; b++) {
    const base = b * channels * spatial;
    for (let o = 0; o < channels; o++) {
      for (let s = 0; s < spatial; s++) {
        let eps = denoiser.c[o]!;
        for (let p = 0; p < channels; p++)
          eps += denoiser.wd[o * channels + p]! * y[base + p * spatial + s]!;
        out[base + o * spatial + s] = coeffs.c3 * y[base + o * spatial + s]! - coeffs.c1 * eps;
      }
    }
  }
  return out;
}

/**
 * Plain Linear forward on rows: y = W x + b in either layout (float64).
 * @param x - inputs, nRows x inFeatures
 * @param nRows - number of rows
 * @param weight - `[out, in]` ('out-in') or `[in, out]` ('in-out')
 * @param bias - `[out]` or null
 * @param inFeatures - input size
 * @param outFeatures - output size
 * @param layout - weight layout
 * @example linearForward(x, 4, w, b, 3, 2, 'out-in');
 */
export function linearForward(
  x: NumArray,
  nRows: number,
  weight: NumArray,
  bias: NumArray | null | undefined,
  inFeatures: number,
  outFeatures: number,
  layout: LinearLayout,
): Float64Array {
  need(x, nRows * inFeatures, 'input', 'linearForward');
  need(weight, inFeatures * outFeatures, 'weight', 'linearForward');
  const y = new Float64Array(nRows * outFeatures);
  for (let r = 0; r < nRows; r++) {
    for (let o = 0; o < outFeatures; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inFeatures; i++) {
        const w = layout === 'out-in' ? weight[o * inFeatures + i]! : weight[i * outFeatures + o]!;
        s += w * x[r * inFeatures + i]!;
      }
      y[r * outFeatures + o] = s;
    }
  }
  return y;
}

/**
 * Reference denoising loss L1 + MSE, each a mean over all elements.
 * @param eps - true noise
 * @param epsHat - predicted noise (same length)
 * @example denoisingLossReference([0, 0], [1, -1]) // 1 + 1 = 2
 */
export function denoisingLossReference(eps: ArrayLike<number>, epsHat: ArrayLike<number>): number {
  if (eps.length !== epsHat.length || eps.length === 0) {
    throw new UsageError(
      `denoisingLossReference: lengths ${eps.length} and ${epsHat.length} must match and be > 0`,
    );
  }
  let l1 = 0;
  let l2 = 0;
  for (let i = 0; i < eps.length; i++) {
    const r = eps[i]! - epsHat[i]!;
    l1 += Math.abs(r);
    l2 += r * r;
  }
  return (l1 + l2) / eps.length;
}

/**
 * Expected per-element MSE of the linear predictor eps_hat = Wd (x_t + e) + bd over the data
 * (its moments) and Gaussian noise, without sampling. With b = Wd e + bd and residual
 * r = (I - s2 Wd) eps - s1 Wd x - b:
 *   E||r||^2 = ||I - s2 Wd||_F^2 + s1^2 tr(Wd S Wdᵀ) + ||s1 Wd mu + b||^2,
 * divided by the dimension.
 * @param stats - moments of the clean inputs
 * @param coeffs - s1, s2
 * @param wd - predictor weight, dim x dim
 * @param bd - predictor bias
 * @param e - time embedding
 * @example expectedMseLoss(acc, coeffs, fit.Wd, fit.bd, fit.e);
 */
export function expectedMseLoss(
  stats: MomentAccumulator,
  coeffs: NoiseScales,
  wd: NumArray,
  bd: NumArray,
  e: NumArray,
): number {
  const d = stats.dim;
  if (wd.length !== d * d || bd.length !== d || e.length !== d) {
    throw new UsageError(`expectedMseLoss: predictor sizes do not match dimension ${d}`);
  }
  const { s1, s2 } = coeffs;
  const mu = stats.mean();
  const cov = stats.covariance();
  let noiseTerm = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      const v = (i === j ? 1 : 0) - s2 * wd[i * d + j]!;
      noiseTerm += v * v;
    }
  }
  // tr(Wd S Wdᵀ) = sum_i (Wd S)_i . Wd_i
  let dataTerm = 0;
  const row = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    row.fill(0);
    for (let k = 0; k < d; k++) {
      const w = wd[i * d + k]!;
      if (w === 0) continue;
      for (let j = 0; j < d; j++) row[j]! += w * cov[k * d + j]!;
    }
    for (let j = 0; j < d; j++) dataTerm += row[j]! * wd[i * d + j]!;
  }
  let biasTerm = 0;
  for (let i = 0; i < d; i++) {
    let v = bd[i]!;
    for (let j = 0; j < d; j++) v += wd[i * d + j]! * (s1 * mu[j]! + e[j]!);
    biasTerm += v * v;
  }
  return (noiseTerm + s1 * s1 * dataTerm + biasTerm) / d;
}
