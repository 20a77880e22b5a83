/**
 * The Fréchet distance between two sets of images in a network's feature space (FID's
 * formula, Heusel et al. 2017, with the project's own `resnet-tiny-fmnist` features in
 * place of Inception's): each set is summarised by the mean and covariance of its
 * features, and
 * FD = ‖mu_1 − mu_2‖² + tr(S_1 + S_2 − 2 (S_1 S_2)^{1/2}).
 * tr((S_1 S_2)^{1/2}) is computed as Σ sqrt(λ) over the eigenvalues of the symmetric
 * S_1^{1/2} S_2 S_1^{1/2}, which has the same spectrum as S_1 S_2.
 */
import { INPUT_NAME } from '../models/types.js';
import type { Model } from '../onnx/ir.js';
import { float32 } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import { ModelError, UsageError } from '../util/errors.js';
import { matmul, symmetricEigen, symmetricEigenvalues } from '../denoise/linalg.js';

/** Mean and covariance of a feature set (float64). */
export interface GaussianStats {
  dim: number;
  n: number;
  mean: Float64Array;
  /** dim x dim, normalised by n − 1. */
  cov: Float64Array;
}

/**
 * Mean and unbiased covariance of `n` feature rows of width `dim`.
 * @example
 * const s = gaussianStats(feats, 1000, 128);
 */
export function gaussianStats(features: ArrayLike<number>, n: number, dim: number): GaussianStats {
  if (features.length !== n * dim) {
    throw new UsageError(`gaussianStats: ${features.length} values are not ${n} rows of ${dim}`);
  }
  if (n < 2) throw new UsageError(`a covariance needs at least 2 samples, got ${n}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += features[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) row[j] = features[i * dim + j]! - mean[j]!;
    for (let j = 0; j < dim; j++) {
      const rj = row[j]!;
      if (rj === 0) continue;
      for (let k = j; k < dim; k++) cov[j * dim + k]! += rj * row[k]!;
    }
  }
  for (let j = 0; j < dim; j++) {
    for (let k = j; k < dim; k++) {
      const v = cov[j * dim + k]! / (n - 1);
      cov[j * dim + k] = v;
      cov[k * dim + j] = v;
    }
  }
  return { dim, n, mean, cov };
}

/**
 * The Fréchet distance between two Gaussians (see the module comment). Negative
 * eigenvalues from rounding are treated as 0; the result is clamped at 0.
 * @example
 * const fd = frechetDistance(gaussianStats(gen, n, d), gaussianStats(real, m, d));
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.dim !== b.dim) throw new UsageError(`feature widths differ: ${a.dim} vs ${b.dim}`);
  const d = a.dim;
  let dm = 0;
  for (let j = 0; j < d; j++) dm += (a.mean[j]! - b.mean[j]!) ** 2;
  let tr = 0;
  for (let j = 0; j < d; j++) tr += a.cov[j * d + j]! + b.cov[j * d + j]!;
  // S_1^{1/2} = V diag(sqrt λ) Vᵀ
  const e = symmetricEigen(a.cov, d);
  const root = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(0, e.values[k]!));
    if (s === 0) continue;
    for (let i = 0; i < d; i++) {
      const vi = e.vectors[i * d + k]! * s;
      for (let j = 0; j < d; j++) root[i * d + j]! += vi * e.vectors[j * d + k]!;
    }
  }
  const m = matmul(matmul(root, b.cov, d, d, d), root, d, d, d);
  let trRoot = 0;
  for (const l of symmetricEigenvalues(m, d)) trRoot += Math.sqrt(Math.max(0, l));
  return Math.max(0, dm + tr - 2 * trRoot);
}

/**
 * Runs a classifier's evaluation graph over images and returns its `feature` output
 * (the penultimate, pooled features of the project's backbones).
 * @param model - evaluation graph with an input `input` and an output `output`
 * @param images - NCHW pixels in [0, 1]
 * @param shape - [C, H, W]
 * @param opts - output name (default 'feature'), batch size, threads
 * @returns the features and their width
 */
export async function modelFeatures(
  model: Model,
  images: Float32Array,
  shape: [number, number, number],
  opts: { output?: string; batchSize?: number; threads?: number } = {},
): Promise<{ dim: number; n: number; data: Float32Array }> {
  const name = opts.output ?? 'feature';
  if (!model.graph.outputs.some((o) => o.name === name)) {
    throw new ModelError(
      `${model.graph.name}: no output '${name}' (outputs: ${model.graph.outputs.map((o) => o.name).join(', ')})`,
    );
  }
  const per = shape[0] * shape[1] * shape[2];
  const n = images.length / per;
  if (!Number.isInteger(n)) throw new UsageError(`${images.length} values are not whole images`);
  const session = await Session.create(model, { threads: opts.threads, source: model.graph.name });
  const bs = opts.batchSize ?? 256;
  let out: Float32Array | undefined;
  let dim = 0;
  try {
    for (let s = 0; s < n; s += bs) {
      const m = Math.min(bs, n - s);
      const r = await session.run(
        { [INPUT_NAME]: float32([m, ...shape], images.slice(s * per, (s + m) * per)) },
        [name],
      );
      const f = r[name]!;
      dim = f.data.length / m;
      out ??= new Float32Array(n * dim);
      out.set(f.data as Float32Array, s * dim);
    }
  } finally {
    await session.release();
  }
  return { dim, n, data: out ?? new Float32Array(0) };
}
