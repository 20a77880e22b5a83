import type { GraphBuilder, Value } from '../onnx/builder.js';

/** Graph input carrying the (optionally smoothed) one-hot targets of a batch. */
export const TARGET_NAME = 'target';
/** Graph input carrying the same-identity mask of a batch (1 where labels match). */
export const SAME_ID_NAME = 'same_id';

/**
 * Mean cross-entropy of logits [N, K] against soft targets [N, K] fed as the graph input
 * `target` (one-hot rows, or label-smoothed: (1 − ε) one-hot + ε / K).
 * loss = −(1/N) Σ_n Σ_k target_nk · log_softmax(logits)_nk
 */
export function crossEntropy(
  b: GraphBuilder,
  logits: Value,
  numClasses: number,
): { loss: Value; target: Value } {
  const target = b.input(TARGET_NAME, 'float32', ['N', numClasses]);
  const logp = b.logSoftmax(logits, -1);
  const perSample = b.reduceSum(b.mul(target, logp), [1], false);
  return { loss: b.neg(b.mean(perSample)), target };
}

/**
 * Batch-hard triplet loss (Hermans et al.; the TransReID recipe) on features [N, D]:
 * for each anchor, the farthest positive and the closest negative under Euclidean
 * distance, loss = mean(relu(margin + d(a, p) − d(a, n))). The same-identity mask
 * [N, N] is fed as the graph input `same_id` (built from the batch labels).
 */
export function tripletBatchHard(
  b: GraphBuilder,
  feats: Value,
  margin = 0.3,
): { loss: Value; sameId: Value } {
  const sameId = b.input(SAME_ID_NAME, 'float32', ['N', 'N']);
  const sq = b.reduceSum(b.mul(feats, feats), [1], true); // [N,1]
  const gram = b.matmul(feats, b.transpose(feats, [1, 0])); // [N,N]
  const d2 = b.sub(b.add(sq, b.transpose(sq, [1, 0])), b.mul(gram, b.scalar(2)));
  const dist = b.sqrt(b.op1('Max', [d2, b.scalar(1e-12)]));
  // Positives: largest distance where same id; negatives: smallest where different id.
  const big = b.scalar(1e6);
  const one = b.scalar(1);
  const ap = b.op1('ReduceMax', [b.sub(b.mul(dist, sameId), b.mul(b.sub(one, sameId), big))], {
    axes: [1],
    keepdims: 0,
  });
  const an = b.op1('ReduceMin', [b.add(dist, b.mul(sameId, big))], { axes: [1], keepdims: 0 });
  const hinge = b.relu(b.add(b.sub(ap, an), b.scalar(margin)));
  return { loss: b.mean(hinge), sameId };
}

/** One-hot (optionally label-smoothed) targets for a batch of labels. */
export function oneHot(labels: ArrayLike<number>, numClasses: number, smoothing = 0): Float32Array {
  const n = labels.length;
  const out = new Float32Array(n * numClasses).fill(smoothing / numClasses);
  for (let i = 0; i < n; i++) out[i * numClasses + labels[i]!]! += 1 - smoothing;
  return out;
}

/** The same-identity mask [N, N] of a batch. */
export function sameIdMask(labels: ArrayLike<number>): Float32Array {
  const n = labels.length;
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) out[i * n + j] = labels[i] === labels[j] ? 1 : 0;
  return out;
}
