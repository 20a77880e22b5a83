import { DataError } from '../errors.js';

/**
 * Distance matrix [nq, ng] between query and gallery features (row-major, `dim` each).
 * 'cosine': 1 − cos; 'euclidean': plain L2 distance via ‖q‖² + ‖g‖² − 2 q·g in float64,
 * clamped at 0. `l2norm` normalises the features first (the ReID test-time convention).
 */
export function distanceMatrix(
  q: ArrayLike<number>,
  g: ArrayLike<number>,
  dim: number,
  opts: { metric?: 'cosine' | 'euclidean'; l2norm?: boolean } = {},
): Float64Array {
  const metric = opts.metric ?? 'euclidean';
  const nq = q.length / dim;
  const ng = g.length / dim;
  if (!Number.isInteger(nq) || !Number.isInteger(ng))
    throw new DataError(`feature arrays are not multiples of dim ${dim}`);
  const norms = (x: ArrayLike<number>, n: number) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += x[i * dim + k]! ** 2;
      out[i] = Math.sqrt(s);
    }
    return out;
  };
  const nqv = norms(q, nq);
  const ngv = norms(g, ng);
  const unit = metric === 'cosine' || opts.l2norm;
  const d = new Float64Array(nq * ng);
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < ng; j++) {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += q[i * dim + k]! * g[j * dim + k]!;
      if (unit) {
        const c = dot / Math.max(nqv[i]! * ngv[j]!, 1e-12);
        d[i * ng + j] = metric === 'cosine' ? 1 - c : Math.sqrt(Math.max(0, 2 - 2 * c));
      } else {
        d[i * ng + j] = Math.sqrt(Math.max(0, nqv[i]! ** 2 + ngv[j]! ** 2 - 2 * dot));
      }
    }
  }
  return d;
}

export interface RetrievalMetrics {
  mAP: number;
  /** cmc[k-1]: fraction of valid queries with a true match within the top k. */
  cmc: number[];
  rank1: number;
  rank5: number;
  rank10: number;
  validQueries: number;
  /** Queries with no true match left after the exclusions (not counted in the means). */
  skippedQueries: number;
}

/**
 * CMC and mAP under the Market-1501 protocol: for each query the gallery is sorted by
 * distance (stable: ties keep gallery order); gallery items with the same identity AND the
 * same camera as the query are removed, and so are junk items (label −1); a query left with
 * no true match is skipped and counted. AP is the mean of the precision at each true
 * match. Without cameras only junk is removed (classes as identities: every gallery item
 * of the query's class is a true match).
 */
export function evaluateRetrieval(opts: {
  dist: ArrayLike<number>;
  qLabels: ArrayLike<number>;
  gLabels: ArrayLike<number>;
  qCams?: ArrayLike<number>;
  gCams?: ArrayLike<number>;
  maxRank?: number;
}): RetrievalMetrics {
  const nq = opts.qLabels.length;
  const ng = opts.gLabels.length;
  const maxRank = opts.maxRank ?? 10;
  if (opts.dist.length !== nq * ng)
    throw new DataError(`distance matrix has ${opts.dist.length} entries, expected ${nq} x ${ng}`);
  const cmcCounts = new Array<number>(maxRank).fill(0);
  let apSum = 0;
  let valid = 0;
  const order = new Array<number>(ng);
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < ng; j++) order[j] = j;
    order.sort((a, b) => opts.dist[i * ng + a]! - opts.dist[i * ng + b]! || a - b);
    const ql = opts.qLabels[i]!;
    let rank = 0;
    let hits = 0;
    let precSum = 0;
    let first = -1;
    for (const j of order) {
      const gl = opts.gLabels[j]!;
      if (gl === -1) continue;
      if (opts.qCams && opts.gCams && gl === ql && opts.gCams[j] === opts.qCams[i]) continue;
      rank++;
      if (gl === ql) {
        hits++;
        precSum += hits / rank;
        if (first < 0) first = rank;
      }
    }
    if (hits === 0) continue;
    valid++;
    apSum += precSum / hits;
    for (let k = first - 1; k < maxRank; k++) if (k >= 0) cmcCounts[k]!++;
  }
  const cmc = cmcCounts.map((c) => (valid ? c / valid : 0));
  return {
    mAP: valid ? apSum / valid : 0,
    cmc,
    rank1: cmc[0] ?? 0,
    rank5: cmc[4] ?? cmc.at(-1) ?? 0,
    rank10: cmc[9] ?? cmc.at(-1) ?? 0,
    validQueries: valid,
    skippedQueries: nq - valid,
  };
}
