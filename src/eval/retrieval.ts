import { DataError, UsageError } from '../util/errors.js';

/** Options of {@link distanceMatrix}. */
export interface DistanceOptions {
  /** 'cosine': 1 − cos(q, g), in [0, 2]; 'euclidean' (default): plain (not squared) L2. */
  metric?: 'cosine' | 'euclidean';
  /** L2-normalise every feature first (the ReID test-time convention); no effect on cosine. */
  l2norm?: boolean;
}

/**
 * Distance matrix [nq, ng] (row-major) between query and gallery features, each a
 * row-major [n, dim] array. Computed in float64.
 *
 * Euclidean distances use ‖q − g‖² = ‖q‖² + ‖g‖² − 2 q·g (one dot product per pair),
 * clamped at 0 against rounding, then the square root: a plain L2 distance. With
 * `l2norm` this is √(2 − 2 cos), which ranks exactly like the cosine distance. A zero
 * feature has no direction: normalising leaves it at zero, and its cosine with anything
 * is taken as 0 (distance 1).
 * @param q - query features [nq, dim]
 * @param g - gallery features [ng, dim]
 * @param dim - feature size
 * @param opts - metric and normalisation
 * @example
 * distanceMatrix(Float32Array.from([3, 4]), Float32Array.from([0, 0, 3, 0]), 2); // [5, 4]
 * distanceMatrix([1, 0], [0, 1], 2, { metric: 'cosine' }); // [1]
 */
export function distanceMatrix(
  q: ArrayLike<number>,
  g: ArrayLike<number>,
  dim: number,
  opts: DistanceOptions = {},
): Float64Array {
  const metric = opts.metric ?? 'euclidean';
  if (metric !== 'cosine' && metric !== 'euclidean')
    throw new UsageError(`unknown distance metric '${String(metric)}' (cosine or euclidean)`);
  if (!Number.isInteger(dim) || dim < 1)
    throw new UsageError(`feature size must be an integer >= 1, got ${dim}`);
  const unit = metric === 'cosine' || opts.l2norm === true;
  const Q = rows(q, dim, unit, 'query');
  const G = rows(g, dim, unit, 'gallery');
  const nq = Q.n;
  const ng = G.n;
  const d = new Float64Array(nq * ng);
  for (let i = 0; i < nq; i++) {
    const qo = i * dim;
    const qq = Q.sq[i]!;
    for (let j = 0; j < ng; j++) {
      const go = j * dim;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += Q.x[qo + k]! * G.x[go + k]!;
      d[i * ng + j] =
        metric === 'cosine' ? 1 - dot : Math.sqrt(Math.max(0, qq + G.sq[j]! - 2 * dot));
    }
  }
  return d;
}

/** Features as float64 rows, normalised if asked, with their squared norms. */
function rows(
  a: ArrayLike<number>,
  dim: number,
  unit: boolean,
  what: string,
): { x: Float64Array; sq: Float64Array; n: number } {
  const n = a.length / dim;
  if (!Number.isInteger(n))
    throw new DataError(`${what} features have ${a.length} values, not a multiple of ${dim}`);
  const x = Float64Array.from(a);
  const sq = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = i * dim; k < (i + 1) * dim; k++) s += x[k]! * x[k]!;
    if (Number.isNaN(s)) throw new DataError(`${what} feature ${i} contains NaN`);
    if (unit && s > 0) {
      const inv = 1 / Math.sqrt(s);
      s = 0;
      for (let k = i * dim; k < (i + 1) * dim; k++) {
        x[k] = x[k]! * inv;
        s += x[k]! * x[k]!;
      }
    }
    sq[i] = s;
  }
  return { x, sq, n };
}

/** Result of {@link evaluateRetrieval}; every mean is over the valid queries. */
export interface RetrievalMetrics {
  /** Mean average precision. */
  mAP: number;
  /** cmc[k − 1]: fraction of valid queries with a true match within the top k, k = 1..maxRank. */
  cmc: number[];
  rank1: number;
  rank5: number;
  rank10: number;
  /** Queries with at least one true match after the exclusions. */
  validQueries: number;
  /** Queries with no true match left after the exclusions (not in the means). */
  skippedQueries: number;
  /**
   * AP of each query, in query order, NaN for a skipped query (only with `perQuery`): the
   * per-item scores a paired bootstrap of mAP resamples.
   */
  queryAP?: Float64Array;
}

/** Inputs of {@link evaluateRetrieval}. */
export interface RetrievalInput {
  /** Distances [nq, ng] row-major (smaller = more similar), e.g. from {@link distanceMatrix}. */
  dist: ArrayLike<number>;
  /** Identity of each query. */
  qLabels: ArrayLike<number>;
  /** Identity of each gallery item; −1 marks junk. */
  gLabels: ArrayLike<number>;
  /** Camera of each query; give both camera arrays or neither. */
  qCams?: ArrayLike<number>;
  /** Camera of each gallery item. */
  gCams?: ArrayLike<number>;
  /** Length of the returned CMC curve (default 10). */
  maxRank?: number;
  /** Also return each query's AP (`queryAP`). */
  perQuery?: boolean;
}

/**
 * CMC and mAP under the Market-1501 protocol. For each query:
 * 1. the gallery is ranked by distance, ties by gallery index (a stable sort);
 * 2. junk items (label −1) are removed, and so are items with the query's identity AND
 *    the query's camera (the same shot seen again is not a retrieval);
 * 3. a query left with no true match (same identity) is skipped and counted in
 *    `skippedQueries`; it enters neither mAP nor CMC;
 * 4. AP = the mean, over the query's true matches, of the precision at each match's
 *    rank (hits so far / rank) — the definition of the common Python ReID evaluation code
 *    (not the original MATLAB code's interpolated variant);
 * 5. CMC at k = 1 if the first true match is within the top k.
 *
 * With no valid query at all, every value is 0.
 *
 * Without cameras (`qCams`/`gCams` undefined) only junk is removed. That is the
 * class-as-identity protocol for data sets without cameras (Fashion-MNIST, CIFAR): labels
 * are classes, every gallery image of the query's class is a true match, and queries and
 * gallery come from disjoint splits so no query meets itself (if they overlap, the query
 * itself sits at distance 0 and inflates the scores).
 *
 * The ranks of the true matches are computed without sorting the whole gallery (each
 * other item is placed among the sorted matches by binary search), which gives the same
 * ranks as the sort in step 1.
 * @param opts - distances, labels, optional cameras, CMC length
 * @example
 * // One query (id 7), gallery: id 3 at distance 0.1, id 7 at 0.2 -> first match at rank 2.
 * const r = evaluateRetrieval({ dist: [0.1, 0.2], qLabels: [7], gLabels: [3, 7], maxRank: 2 });
 * r.mAP; // 0.5
 * r.cmc; // [0, 1]
 */
export function evaluateRetrieval(opts: RetrievalInput): RetrievalMetrics {
  const { dist, qLabels, gLabels, qCams, gCams } = opts;
  const nq = qLabels.length;
  const ng = gLabels.length;
  const maxRank = opts.maxRank ?? 10;
  if (!Number.isInteger(maxRank) || maxRank < 1)
    throw new UsageError(`maxRank must be an integer >= 1, got ${maxRank}`);
  if (dist.length !== nq * ng)
    throw new DataError(`distance matrix has ${dist.length} entries, expected ${nq} x ${ng}`);
  if ((qCams === undefined) !== (gCams === undefined))
    throw new UsageError('cameras must be given for both queries and gallery, or for neither');
  if (qCams && qCams.length !== nq)
    throw new DataError(`${qCams.length} query cameras for ${nq} queries`);
  if (gCams && gCams.length !== ng)
    throw new DataError(`${gCams.length} gallery cameras for ${ng} gallery items`);

  // CMC is counted to rank 10 at least, so rank5/rank10 never depend on maxRank.
  const cmcLen = Math.max(maxRank, 10);
  const firstHits = new Float64Array(cmcLen);
  let apSum = 0;
  let valid = 0;
  const queryAP = opts.perQuery ? new Float64Array(nq).fill(NaN) : undefined;
  const matchIdx: number[] = [];
  const others: number[] = [];
  for (let i = 0; i < nq; i++) {
    const off = i * ng;
    const ql = qLabels[i]!;
    matchIdx.length = 0;
    others.length = 0;
    for (let j = 0; j < ng; j++) {
      if (Number.isNaN(dist[off + j]!))
        throw new DataError(`distance of query ${i} to gallery item ${j} is NaN`);
      const gl = gLabels[j]!;
      if (gl === -1) continue;
      if (gl === ql) {
        if (qCams && gCams && gCams[j] === qCams[i]) continue;
        matchIdx.push(j);
      } else others.push(j);
    }
    const m = matchIdx.length;
    if (m === 0) continue;
    valid++;
    // Matches in ranking order (indices are already ascending; ties keep that order).
    matchIdx.sort((a, b) => dist[off + a]! - dist[off + b]! || a - b);
    const md = Float64Array.from(matchIdx, (j) => dist[off + j]!);
    // before[p]: how many non-matches rank just before match p (after match p − 1).
    const before = new Int32Array(m + 1);
    for (const j of others) {
      const dj = dist[off + j]!;
      let lo = 0;
      let hi = m;
      // First match ranked after item j: larger distance, or equal distance and larger index.
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (md[mid]! > dj || (md[mid] === dj && matchIdx[mid]! > j)) hi = mid;
        else lo = mid + 1;
      }
      before[lo]!++;
    }
    let nonMatches = 0;
    let precSum = 0;
    let first = 0;
    for (let p = 0; p < m; p++) {
      nonMatches += before[p]!;
      const rank = p + 1 + nonMatches; // 1-based rank of match p among the kept items
      if (p === 0) first = rank;
      precSum += (p + 1) / rank;
    }
    apSum += precSum / m;
    if (queryAP) queryAP[i] = precSum / m;
    if (first <= cmcLen) firstHits[first - 1]!++;
  }
  const cmcAll: number[] = [];
  let cum = 0;
  for (let k = 0; k < cmcLen; k++) {
    cum += firstHits[k]!;
    cmcAll.push(valid ? cum / valid : 0);
  }
  return {
    mAP: valid ? apSum / valid : 0,
    cmc: cmcAll.slice(0, maxRank),
    rank1: cmcAll[0]!,
    rank5: cmcAll[4]!,
    rank10: cmcAll[9]!,
    validQueries: valid,
    skippedQueries: nq - valid,
    ...(queryAP ? { queryAP } : {}),
  };
}
