import type { Value } from '../onnx/builder.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import type { Rng } from '../util/rng.js';
import type { LayerContext } from './context.js';

/**
 * Inverted dropout. In training mode the keep-mask is a graph input (`mask::<scope>`,
 * same shape as `x` with the batch symbolic) that the trainer fills from the seeded Rng,
 * so runs repeat exactly; in evaluation mode, or with p = 0, it is the identity.
 */
export function dropout(ctx: LayerContext, x: Value, name: string, p: number): Value {
  if (ctx.mode === 'eval' || p <= 0) return x;
  const { b } = ctx;
  // Not b.uniqueName: it reserves the name, and b.input then refuses it as a duplicate.
  const base = `mask::${b.qualify(name)}`;
  let maskName = base;
  for (let k = 1; ctx.dropoutMasks.has(maskName); k++) maskName = `${base}_${k}`;
  const mask = b.input(maskName, x.dtype, x.shape!);
  ctx.dropoutMasks.set(maskName, { keep: 1 - p, value: mask });
  return b.mul(x, mask);
}

/**
 * Feeds for every dropout mask of a training graph, for a batch of `n`: inverted
 * Bernoulli masks (1/keep with probability keep, else 0) drawn from `rng`.
 */
export function dropoutFeeds(ctx: LayerContext, n: number, rng: Rng): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const [name, { keep, value }] of ctx.dropoutMasks) {
    const dims = [n, ...(value.shape!.slice(1) as number[])];
    const m = new Float32Array(dims.reduce((a, d) => a * d, 1));
    for (let i = 0; i < m.length; i++) m[i] = rng.uniform() < keep ? 1 / keep : 0;
    feeds[name] = float32(dims, m);
  }
  return feeds;
}
