/**
 * Seeded batch samplers (shuffled epochs, PK identity batches) and the query/gallery split
 * used to evaluate retrieval on class-labelled data.
 */
import { UsageError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0)
    throw new UsageError(`${name} must be a positive integer, got ${v}`);
}

/**
 * One epoch of shuffled batches: a random permutation of 0..n−1 cut into batches of
 * `batchSize`; the last, shorter batch is dropped when `dropLast` is set.
 * @param n - number of samples.
 * @param batchSize - samples per batch.
 * @param rng - the data-order generator.
 * @param opts - `dropLast` (default false).
 * @example
 * for (const idx of epochBatches(train.size, 64, rng.fork('order'))) step(gatherBatch(train, idx));
 */
export function epochBatches(
  n: number,
  batchSize: number,
  rng: Rng,
  opts: { dropLast?: boolean } = {},
): Int32Array[] {
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`epochBatches: n must be an integer ≥ 0, got ${n}`);
  positiveInt('epochBatches: batchSize', batchSize);
  const perm = rng.permutation(n);
  const out: Int32Array[] = [];
  for (let s = 0; s < n; s += batchSize) {
    if (opts.dropLast && s + batchSize > n) break;
    out.push(perm.slice(s, Math.min(s + batchSize, n)));
  }
  return out;
}

/**
 * PK batches for metric learning (the identity sampler of TransReID / reid-strong-baseline):
 * for each identity, its image indices are shuffled — drawn with replacement up to K when it
 * has fewer than K images — and cut into chunks of K (a remainder under K is dropped); then,
 * while at least P identities have chunks left, P distinct identities are drawn uniformly and
 * one chunk of each forms a batch of P·K indices (identity-major: K indices of the first
 * identity, then the next). Negative labels (unlabeled / junk) are ignored.
 * @param labels - identity per sample.
 * @param P - identities per batch.
 * @param K - images per identity.
 * @param rng - the data-order generator.
 * @example
 * const batches = pkBatches(train.labels, 32, 4, rng.fork('pk')); // batches of 128
 */
export function pkBatches(labels: ArrayLike<number>, P: number, K: number, rng: Rng): Int32Array[] {
  positiveInt('pkBatches: P', P);
  positiveInt('pkBatches: K', K);
  const byId = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0) continue;
    let list = byId.get(l);
    if (!list) byId.set(l, (list = []));
    list.push(i);
  }
  if (byId.size < P)
    throw new UsageError(
      `pkBatches: P = ${P} identities per batch, but the labels have only ${byId.size}`,
    );
  // Identities in ascending order so that the draw does not depend on Map insertion order.
  const ids = [...byId.keys()].sort((a, b) => a - b);
  const chunks = new Map<number, number[][]>();
  for (const id of ids) {
    let idx = byId.get(id)!.slice();
    if (idx.length < K) idx = Array.from({ length: K }, () => idx[rng.int(idx.length)]!);
    rng.shuffle(idx);
    const list: number[][] = [];
    for (let s = 0; s + K <= idx.length; s += K) list.push(idx.slice(s, s + K));
    chunks.set(id, list);
  }
  const available = ids.slice();
  const out: Int32Array[] = [];
  while (available.length >= P) {
    // Partial Fisher-Yates: the first P entries become a uniform draw without replacement.
    for (let j = 0; j < P; j++) {
      const r = j + rng.int(available.length - j);
      [available[j], available[r]] = [available[r]!, available[j]!];
    }
    const batch = new Int32Array(P * K);
    for (let j = 0; j < P; j++) batch.set(chunks.get(available[j]!)!.shift()!, j * K);
    out.push(batch);
    for (let j = available.length - 1; j >= 0; j--)
      if (chunks.get(available[j]!)!.length === 0) available.splice(j, 1);
  }
  return out;
}

/**
 * Splits class-labelled data into retrieval query and gallery sets: in each class,
 * `queriesPerClass` indices drawn at random become queries, the rest gallery. Classes play
 * the role of identities and there are no cameras, so every gallery image of a query's class
 * is a true match (no same-camera filtering, unlike the ReID protocol). Each class needs more
 * than `queriesPerClass` images so every query has at least one match. Negative labels
 * are left out of both sets.
 * @param labels - class per sample.
 * @param queriesPerClass - queries drawn from each class.
 * @param rng - the split generator.
 * @returns ascending indices of the queries and of the gallery.
 * @example
 * const { query, gallery } = queryGallerySplit(test.labels, 10, new Rng(0));
 */
export function queryGallerySplit(
  labels: ArrayLike<number>,
  queriesPerClass: number,
  rng: Rng,
): { query: Int32Array; gallery: Int32Array } {
  positiveInt('queryGallerySplit: queriesPerClass', queriesPerClass);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0) continue;
    let list = byClass.get(l);
    if (!list) byClass.set(l, (list = []));
    list.push(i);
  }
  if (byClass.size === 0) throw new UsageError('queryGallerySplit: no labelled samples');
  const query: number[] = [];
  const gallery: number[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(c)!;
    if (idx.length <= queriesPerClass) {
      throw new UsageError(
        `queryGallerySplit: class ${c} has ${idx.length} samples, needs more than ${queriesPerClass} queries per class`,
      );
    }
    rng.shuffle(idx);
    query.push(...idx.slice(0, queriesPerClass));
    gallery.push(...idx.slice(queriesPerClass));
  }
  const asc = (a: number, b: number) => a - b;
  return { query: Int32Array.from(query.sort(asc)), gallery: Int32Array.from(gallery.sort(asc)) };
}
