/**
 * Closed-form (MSE-optimal) linear noise predictor for an input-side denoiser, from
 * streaming first and second moments of the layer's clean inputs.
 *
 * Model: x_t = s1 x + s2 eps with eps ~ N(0, I) independent of x, s1 = sqrt(abar_t),
 * s2 = sqrt(1 - abar_t); predictor eps_hat = Wd (x_t + e) + bd = Wd x_t + b, b = Wd e + bd.
 * Minimising E||eps - Wd x_t - b||^2 is a linear regression of eps on x_t:
 *   b  = E[eps] - Wd E[x_t] = -s1 Wd mu,
 *   Wd = Cov(eps, x_t) Cov(x_t)^-1 = (s2 I) (s1^2 S + s2^2 I)^-1,
 * with mu, S the mean and (population) covariance of x. S and (s1^2 S + s2^2 I)^-1 commute,
 * so Wd is symmetric. The time embedding e is redundant with bd: we choose e = 0 and
 * bd = -s1 Wd mu, i.e. eps_hat = Wd (x_t - s1 mu).
 */
import { DataError, UsageError } from '../util/errors.js';
import {
  cholesky,
  choleskySolve,
  identity,
  type NumArray,
  symmetricEigenQl,
  symmetriseInPlace,
} from './linalg.js';
import {
  type DenseKernels,
  matmulCompiled,
  spdInverseCompiled,
  symmetricEigenvaluesCompiled,
} from './linalg-compiled.js';
import type { StepCoefficients } from './schedule.js';

const MAGIC = 'DRMOMENT';
const VERSION = 1;
const HEADER_BYTES = 24; // magic (8) + version u32 + dim u32 + count f64

/**
 * Streaming sums for the mean and covariance of feature vectors: count, sum x and the Gram
 * matrix sum x xᵀ (float64). Shards are merged by plain addition, so merging in any order
 * gives the same statistics up to float64 rounding. Raw (uncentred) moments lose accuracy
 * only when |mean| exceeds the standard deviation by many orders of magnitude, which
 * network activations do not.
 * @example
 * const acc = new MomentAccumulator(4);
 * acc.add(rows, 128); // rows: 128 x 4
 * const bytes = acc.serialize();
 */
export class MomentAccumulator {
  readonly dim: number;
  count: number;
  readonly sum: Float64Array;
  /** sum of x xᵀ, dim x dim row-major, kept symmetric */
  readonly gram: Float64Array;

  /**
   * @param dim - feature dimension (positive integer)
   * @param sums - sums computed elsewhere (e.g. sent to a worker thread) to take over
   *   without copying; default zeros
   */
  constructor(dim: number, sums?: { count: number; sum: Float64Array; gram: Float64Array }) {
    if (!Number.isInteger(dim) || dim < 1)
      throw new UsageError(`MomentAccumulator: dim must be a positive integer, got ${dim}`);
    if (sums && (sums.sum.length !== dim || sums.gram.length !== dim * dim))
      throw new UsageError(
        `MomentAccumulator: sums of sizes ${sums.sum.length} and ${sums.gram.length} for dim ${dim}`,
      );
    this.dim = dim;
    this.count = sums?.count ?? 0;
    this.sum = sums?.sum ?? new Float64Array(dim);
    this.gram = sums?.gram ?? new Float64Array(dim * dim);
  }

  /**
   * Adds nRows feature vectors (row-major, nRows x dim).
   * @param rows - the vectors
   * @param nRows - how many (default rows.length / dim)
   */
  add(rows: NumArray, nRows = rows.length / this.dim): this {
    const d = this.dim;
    if (!Number.isInteger(nRows) || nRows < 0 || rows.length < nRows * d) {
      throw new UsageError(
        `MomentAccumulator.add: ${rows.length} values cannot hold ${nRows} rows of ${d}`,
      );
    }
    const g = this.gram;
    for (let r = 0; r < nRows; r++) {
      const off = r * d;
      for (let i = 0; i < d; i++) {
        const xi = rows[off + i]!;
        this.sum[i]! += xi;
        if (xi === 0) continue;
        const gi = i * d;
        for (let j = i; j < d; j++) g[gi + j]! += xi * rows[off + j]!;
      }
    }
    // Only the upper triangle was accumulated; it holds the full sums, so mirror it.
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) g[i * d + j] = g[j * d + i]!;
    this.count += nRows;
    return this;
  }

  /**
   * Adds another accumulator's statistics (same dim) into this one.
   * @param other - statistics of another shard
   */
  merge(other: MomentAccumulator): this {
    if (other.dim !== this.dim) {
      throw new UsageError(`MomentAccumulator.merge: dims differ (${this.dim} vs ${other.dim})`);
    }
    return this.addSums(other.count, other.sum, other.gram);
  }

  /**
   * Adds sums computed elsewhere (e.g. by ONNX Runtime for one batch) without copying them.
   * @param count - number of rows summed
   * @param sum - Σ x (dim)
   * @param gram - Σ x xᵀ (dim x dim)
   */
  addSums(count: number, sum: ArrayLike<number>, gram: ArrayLike<number>): this {
    if (sum.length !== this.dim || gram.length !== this.dim * this.dim) {
      throw new UsageError(
        `MomentAccumulator.addSums: sizes ${sum.length} and ${gram.length} do not match dim ${this.dim}`,
      );
    }
    this.count += count;
    for (let i = 0; i < this.sum.length; i++) this.sum[i]! += sum[i]!;
    for (let i = 0; i < this.gram.length; i++) this.gram[i]! += gram[i]!;
    return this;
  }

  /** Mean vector (sum / count). */
  mean(): Float64Array {
    if (this.count === 0) throw new DataError('MomentAccumulator: no samples accumulated');
    return this.sum.map((s) => s / this.count);
  }

  /** Population covariance gram / count - mu muᵀ (symmetric). */
  covariance(): Float64Array {
    const mu = this.mean();
    const d = this.dim;
    const s = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++)
        s[i * d + j] = this.gram[i * d + j]! / this.count - mu[i]! * mu[j]!;
    }
    return symmetriseInPlace(s, d);
  }

  /**
   * Binary form (little-endian): 'DRMOMENT', u32 version, u32 dim, f64 count, f64 sum[dim],
   * f64 gram[dim * dim].
   */
  serialize(): Uint8Array {
    const d = this.dim;
    const buf = new ArrayBuffer(HEADER_BYTES + 8 * (d + d * d));
    const view = new DataView(buf);
    for (let i = 0; i < MAGIC.length; i++) view.setUint8(i, MAGIC.charCodeAt(i));
    view.setUint32(8, VERSION, true);
    view.setUint32(12, d, true);
    view.setFloat64(16, this.count, true);
    let off = HEADER_BYTES;
    for (const v of this.sum) {
      view.setFloat64(off, v, true);
      off += 8;
    }
    for (const v of this.gram) {
      view.setFloat64(off, v, true);
      off += 8;
    }
    return new Uint8Array(buf);
  }

  /**
   * Reads {@link MomentAccumulator.serialize}'s format, checking magic, version and length.
   * @param buf - the bytes
   * @param sourceName - file name for error messages
   * @example MomentAccumulator.deserialize(fs.readFileSync(file), file);
   */
  static deserialize(buf: Uint8Array, sourceName: string): MomentAccumulator {
    if (buf.length < HEADER_BYTES) {
      throw new DataError(
        `${sourceName}: ${buf.length} bytes, too short for a moment statistics header`,
      );
    }
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let magic = '';
    for (let i = 0; i < MAGIC.length; i++) magic += String.fromCharCode(view.getUint8(i));
    if (magic !== MAGIC)
      throw new DataError(`${sourceName}: not a moment statistics file (bad magic)`);
    const version = view.getUint32(8, true);
    if (version !== VERSION) {
      throw new DataError(
        `${sourceName}: unsupported moment statistics version ${version} (expected ${VERSION})`,
      );
    }
    const d = view.getUint32(12, true);
    const count = view.getFloat64(16, true);
    if (d < 1) throw new DataError(`${sourceName}: dimension ${d} is invalid`);
    const expected = HEADER_BYTES + 8 * (d + d * d);
    if (buf.length !== expected) {
      throw new DataError(
        `${sourceName}: ${buf.length} bytes, expected ${expected} for dimension ${d}`,
      );
    }
    if (!Number.isInteger(count) || count < 0)
      throw new DataError(`${sourceName}: invalid sample count ${count}`);
    const acc = new MomentAccumulator(d);
    acc.count = count;
    let off = HEADER_BYTES;
    for (let i = 0; i < d; i++, off += 8) acc.sum[i] = view.getFloat64(off, true);
    for (let i = 0; i < d * d; i++, off += 8) acc.gram[i] = view.getFloat64(off, true);
    return acc;
  }
}

/** Result of {@link fitDenoiser}. */
export interface FittedDenoiser {
  /** in x in, symmetric */
  Wd: Float64Array;
  bd: Float64Array;
  /** zeros: the time embedding is absorbed in bd */
  e: Float64Array;
  /** true when diagonal jitter had to be added for the factorisation to succeed */
  regularised: boolean;
  /** the jitter added to the diagonal of s1^2 S + s2^2 I (+ ridge); 0 if none */
  jitter: number;
}

/** Forward-process scales the fit needs. */
export type NoiseScales = Pick<StepCoefficients, 's1' | 's2'>;

/**
 * Fits the MSE-optimal linear noise predictor: Wd = s2 (s1^2 S + s2^2 I + ridge I)^-1,
 * bd = -s1 Wd mu, e = 0. Solved by Cholesky in float64. If the factorisation fails (S
 * singular and s2 tiny) diagonal jitter, starting at 1e-12 times the largest diagonal entry
 * and growing 10x, is added until it succeeds; the result then says `regularised: true`.
 * @param stats - moments of the layer's clean inputs
 * @param coeffs - s1 = sqrt(abar_t), s2 = sqrt(1 - abar_t)
 * @param opts - `ridge` (>= 0, default 0) added to the diagonal; `name` for error messages
 * @example
 * const fit = fitDenoiser(acc, coefficients(schedule, t));
 * if (fit.regularised) console.warn(`jitter ${fit.jitter}`);
 */
export function fitDenoiser(
  stats: MomentAccumulator,
  coeffs: NoiseScales,
  opts: { ridge?: number; name?: string } = {},
): FittedDenoiser {
  const sys = denoiserSystem(stats, coeffs, opts);
  const { a, d, minPivot, maxDiag } = sys;
  let jitter = 0;
  let f = cholesky(a, d, { minPivot });
  while (!f.ok) {
    jitter = nextJitter(jitter, maxDiag, sys.name, f);
    f = cholesky(withJitter(a, d, jitter), d, { minPivot });
  }
  const wd = choleskySolve(f.l, identity(d), d, d);
  return finishDenoiser(sys, wd, jitter);
}

/** A closed-form denoiser with the eigenvalues that give its fused map's spectrum. */
export interface SpectralDenoiser extends FittedDenoiser {
  /**
   * Eigenvalues of the covariance S the fit used (ascending): Wd has the eigenvalues
   * s2 / (s1² λ + s2² + ridge + jitter), with the same eigenvectors as S.
   */
  covarianceEigenvalues: Float64Array;
}

/**
 * {@link fitDenoiser} with its linear algebra compiled (ONNX Runtime float64 Gemm, see
 * ./linalg-compiled.ts), plus the eigenvalues of the covariance: the denoiser and the
 * spectrum of its fused map from one pass over the statistics. Same result as
 * fitDenoiser up to rounding (the same factorisation, blocked), the same jitter rule.
 * @param stats - moments of the layer's clean inputs
 * @param coeffs - s1, s2
 * @param kernels - the compiled kernels
 * @param opts - `ridge`, `name` for messages
 * @example const fit = await fitDenoiserCompiled(acc, coefficients(schedule, t), kernels);
 */
export async function fitDenoiserCompiled(
  stats: MomentAccumulator,
  coeffs: NoiseScales,
  kernels: DenseKernels,
  opts: { ridge?: number; name?: string } = {},
): Promise<SpectralDenoiser> {
  const sys = denoiserSystem(stats, coeffs, opts);
  const { a, d, minPivot, maxDiag } = sys;
  let jitter = 0;
  let f = await spdInverseCompiled(a, d, kernels, { minPivot });
  while (!f.ok) {
    jitter = nextJitter(jitter, maxDiag, sys.name, f);
    f = await spdInverseCompiled(withJitter(a, d, jitter), d, kernels, { minPivot });
  }
  const covarianceEigenvalues = await symmetricEigenvaluesCompiled(sys.cov, d, kernels);
  return { ...finishDenoiser(sys, f.x, jitter), covarianceEigenvalues };
}

/**
 * A layer's weight as the factor of its fusion product ({@link fusionWeight}): for an
 * input-side layer W is out x d and the product W·Wd; for an output-side conv W is
 * d x cols and the product Wd·W (d = the denoiser's width).
 */
export interface FusionFactor {
  data: Float64Array;
  side: 'input' | 'output';
}

/** A layer's closed-form fit, with its fusion product when its weight was given. */
export interface LayerFit {
  fit: SpectralDenoiser;
  /** W·Wd or Wd·W ({@link FusionFactor}) with Wd rounded to float32, as the model stores it. */
  product?: Float64Array;
}

/**
 * {@link fitDenoiserCompiled} and, given the layer's weight W ({@link FusionFactor}), the
 * fusion product: the same product fusionProducts computes after the fit, made while
 * the layer's Wd is at hand.
 * @param stats - moments of the layer's clean inputs
 * @param coeffs - s1, s2
 * @param kernels - the compiled kernels
 * @param opts - `ridge`, `name`; `weight`: W and its side
 */
export async function fitLayerCompiled(
  stats: MomentAccumulator,
  coeffs: NoiseScales,
  kernels: DenseKernels,
  opts: { ridge?: number; name?: string; weight?: FusionFactor } = {},
): Promise<LayerFit> {
  const d = stats.dim;
  const w = opts.weight;
  const other = w ? w.data.length / d : 0;
  if (w && (!Number.isInteger(other) || other === 0))
    throw new DataError(
      `${opts.name ?? 'layer'}: weight has ${w.data.length} values, not a multiple of the width ${d}`,
    );
  const fit = await fitDenoiserCompiled(stats, coeffs, kernels, opts);
  if (!w) return { fit };
  const wd = Float64Array.from(Float32Array.from(fit.Wd));
  const product =
    w.side === 'input'
      ? await matmulCompiled(w.data, wd, other, d, d, kernels)
      : await matmulCompiled(wd, w.data, d, d, other, kernels);
  return { fit, product };
}

/**
 * Singular values (descending) of the fused map c3 I − c1 Wd of a closed-form denoiser,
 * from its covariance eigenvalues: Wd = V diag(g) Vᵀ with g = s2 / (s1² λ + s2² + shift), so
 * the map is symmetric with eigenvalues c3 − c1 g.
 * @param eigenvalues - covariance eigenvalues
 * @param coeffs - s1, s2, c1, c3 of the layer's step
 * @param shift - ridge + jitter of the fit
 * @example fusedMapSpectrum(fit.covarianceEigenvalues, p.coeffs, fit.jitter)
 */
export function fusedMapSpectrum(
  eigenvalues: ArrayLike<number>,
  coeffs: NoiseScales & { c1: number; c3: number },
  shift = 0,
): Float64Array {
  const { s1, s2, c1, c3 } = coeffs;
  const out = Float64Array.from(eigenvalues, (lam) =>
    Math.abs(c3 - (c1 * s2) / (s1 * s1 * Math.max(0, lam) + s2 * s2 + shift)),
  );
  return out.sort().reverse();
}

/** The system s1² S + (s2² + ridge) I of a fit, checked, with what finishing it needs. */
interface DenoiserSystem {
  name: string;
  d: number;
  s1: number;
  s2: number;
  ridge: number;
  mu: Float64Array;
  cov: Float64Array;
  a: Float64Array;
  maxDiag: number;
  minPivot: number;
}

/** The ridge, noise scales and message name of a denoiser fit, checked (UsageErrors). */
function fitSettings(
  coeffs: NoiseScales,
  opts: { ridge?: number; name?: string },
): { name: string; ridge: number; s1: number; s2: number } {
  const name = opts.name ?? 'statistics';
  const ridge = opts.ridge ?? 0;
  if (!(ridge >= 0) || !Number.isFinite(ridge))
    throw new UsageError(`ridge must be a finite number >= 0, got ${ridge}`);
  const { s1, s2 } = coeffs;
  if (!Number.isFinite(s1) || !Number.isFinite(s2) || s1 < 0 || s2 < 0) {
    throw new UsageError(`${name}: noise scales s1=${s1}, s2=${s2} must be finite and >= 0`);
  }
  return { name, ridge, s1, s2 };
}

function denoiserSystem(
  stats: MomentAccumulator,
  coeffs: NoiseScales,
  opts: { ridge?: number; name?: string },
): DenoiserSystem {
  const { name, ridge, s1, s2 } = fitSettings(coeffs, opts);
  if (stats.count === 0) throw new DataError(`${name}: no samples to fit a denoiser`);
  const d = stats.dim;
  const mu = stats.mean();
  const cov = stats.covariance();
  for (let i = 0; i < cov.length; i++) {
    if (!Number.isFinite(cov[i]!))
      throw new DataError(`${name}: statistics are not finite (NaN or Inf in the inputs)`);
  }
  const a = new Float64Array(d * d);
  let maxDiag = 0;
  for (let i = 0; i < d * d; i++) a[i] = s1 * s1 * cov[i]!;
  for (let i = 0; i < d; i++) {
    a[i * d + i]! += s2 * s2 + ridge;
    maxDiag = Math.max(maxDiag, Math.abs(a[i * d + i]!));
  }
  if (maxDiag === 0) maxDiag = 1;
  // A pivot below this is a condition number beyond ~1e14: the solve would be noise.
  const minPivot = 1e-14 * maxDiag;
  return { name, d, s1, s2, ridge, mu, cov, a, maxDiag, minPivot };
}

/** The next diagonal jitter after a failed factorisation (1e-12 · max diagonal, then 10x). */
function nextJitter(
  jitter: number,
  maxDiag: number,
  name: string,
  f: { pivot: number; value: number },
): number {
  const next = jitter === 0 ? 1e-12 * maxDiag : jitter * 10;
  if (next > 1e6 * maxDiag) {
    throw new DataError(
      `${name}: cannot factorise the input covariance (pivot ${f.pivot} = ${f.value})`,
    );
  }
  return next;
}

function withJitter(a: Float64Array, d: number, jitter: number): Float64Array {
  const aj = Float64Array.from(a);
  for (let i = 0; i < d; i++) aj[i * d + i]! += jitter;
  return aj;
}

/** Wd = s2 · inverse, symmetrised; bd = −s1 Wd mu; e = 0. */
function finishDenoiser(
  sys: DenoiserSystem,
  inverse: Float64Array,
  jitter: number,
): FittedDenoiser {
  const { d, s1, s2, mu } = sys;
  const wd = inverse;
  for (let i = 0; i < wd.length; i++) wd[i]! *= s2;
  symmetriseInPlace(wd, d);
  const bd = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += wd[i * d + j]! * mu[j]!;
    bd[i] = -s1 * s;
  }
  return { Wd: wd, bd, e: new Float64Array(d), regularised: jitter > 0, jitter };
}

/**
 * The eigendecomposition of a layer's input covariance, S = V diag(λ) Vᵀ, with the mean:
 * everything the closed-form fit needs at any noise level ({@link fitDenoiserSpectral}).
 */
export interface CovarianceSpectrum {
  dim: number;
  count: number;
  mean: Float64Array;
  /** Eigenvalues of S, ascending; rounding below 0 is clamped to 0 (S is PSD). */
  values: Float64Array;
  /** V: dim x dim, eigenvector k in column k. */
  vectors: Float64Array;
}

/**
 * Eigendecomposes the covariance of `stats` once, so that the closed-form denoiser can be
 * had at many noise levels for O(d³) each without refactorising.
 * @param stats - moments of the layer's clean inputs
 * @param name - for error messages
 * @example
 * const spec = covarianceSpectrum(acc);
 * for (const c of levels) fitDenoiserSpectral(spec, c);
 */
export function covarianceSpectrum(
  stats: MomentAccumulator,
  name = 'statistics',
): CovarianceSpectrum {
  if (stats.count === 0) throw new DataError(`${name}: no samples to fit a denoiser`);
  const cov = stats.covariance();
  for (let i = 0; i < cov.length; i++) {
    if (!Number.isFinite(cov[i]!))
      throw new DataError(`${name}: statistics are not finite (NaN or Inf in the inputs)`);
  }
  const eig = symmetricEigenQl(cov, stats.dim);
  return {
    dim: stats.dim,
    count: stats.count,
    mean: stats.mean(),
    values: eig.values.map((v) => Math.max(0, v)),
    vectors: eig.vectors,
  };
}

/**
 * The closed-form denoiser of {@link fitDenoiser} from a precomputed spectrum: with
 * S = V diag(λ) Vᵀ, s1² S + s2² I = V diag(s1² λ + s2²) Vᵀ, so
 *   Wd = s2 (s1² S + s2² I + ridge I)⁻¹ = V diag(s2 / (s1² λ + s2² + ridge)) Vᵀ,
 * for any s1, s2 from one eigendecomposition; bd = −s1 Wd mu, e = 0 as before. Needs
 * s2² + ridge > 0 (a noise-free step has no noise to predict).
 * @param spec - from {@link covarianceSpectrum}
 * @param coeffs - s1, s2 at the layer's timestep
 * @param opts - ridge (>= 0), name for messages
 * @example fitDenoiserSpectral(covarianceSpectrum(acc), coefficients(makeSchedule({ noiseScale: 10 }), 3));
 */
export function fitDenoiserSpectral(
  spec: CovarianceSpectrum,
  coeffs: NoiseScales,
  opts: { ridge?: number; name?: string } = {},
): FittedDenoiser {
  const { name, ridge, s1, s2 } = fitSettings(coeffs, opts);
  if (!(s2 * s2 + ridge > 0))
    throw new UsageError(`${name}: s2 = 0 and no ridge: the denoiser is undefined`);
  const d = spec.dim;
  const v = spec.vectors;
  const g = spec.values.map((lam) => s2 / (s1 * s1 * lam + s2 * s2 + ridge));
  // Wd = Σ_k g_k v_k v_kᵀ, built as (V diag(g)) Vᵀ over the upper triangle, mirrored.
  const wd = new Float64Array(d * d);
  const vg = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) vg[k] = v[i * d + k]! * g[k]!;
    for (let j = i; j < d; j++) {
      let sum = 0;
      for (let k = 0; k < d; k++) sum += vg[k]! * v[j * d + k]!;
      wd[i * d + j] = sum;
      wd[j * d + i] = sum;
    }
  }
  const bd = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let sum = 0;
    for (let j = 0; j < d; j++) sum += wd[i * d + j]! * spec.mean[j]!;
    bd[i] = -s1 * sum;
  }
  return { Wd: wd, bd, e: new Float64Array(d), regularised: false, jitter: 0 };
}
