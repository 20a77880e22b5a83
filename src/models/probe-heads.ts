import { attentionPool } from '../layers/attention-pool.js';
import type { LayerContext } from '../layers/context.js';
import { layerNorm } from '../layers/norm.js';
import type { Value } from '../onnx/builder.js';
import { classifierHead } from './head.js';
import type { ModelDef } from './types.js';

/**
 * Softmax regression on a feature vector, as a model: input [D, 1, 1] (a feature laid
 * out as a 1x1 image with D channels), standardised in the graph by `norm` (training-set
 * mean and std per dimension: the affine-free BatchNorm that MAE and DDAE put before
 * their linear probes), then one linear layer `head`. Trained by the one training loop.
 * @param dim - D
 * @param numClasses - classes
 * @param norm - per-dimension mean and std
 * @example
 * const def = linearProbeDef(128, 10, { mean, std });
 */
export function linearProbeDef(
  dim: number,
  numClasses: number,
  norm: { mean: number[]; std: number[] },
): ModelDef {
  return {
    name: 'linear-probe',
    family: 'probe',
    inputShape: [dim, 1, 1],
    numClasses,
    featureDim: dim,
    bnneck: false,
    config: { head: 'linear', dim, numClasses },
    normalize: norm,
    build(ctx: LayerContext, input: Value) {
      const h = ctx.b.flatten(input, 1);
      return classifierHead(ctx, h, dim, numClasses, { bnneck: false, name: 'head' });
    },
  };
}

/**
 * An attention-pooling probe on a block's activation map: input [C, g, g] (pooled to a
 * g x g grid), standardised per channel by `norm`, flattened to g² tokens plus a learned
 * position embedding (`pos_embed`), multi-head attention pooling
 * (`pool`), LayerNorm (`norm_out`) and a linear `head`.
 * @param channels - C
 * @param grid - g
 * @param numClasses - classes
 * @param heads - attention heads (dividing C)
 * @param norm - per-channel mean and std
 */
export function attentionProbeDef(
  channels: number,
  grid: number,
  numClasses: number,
  heads: number,
  norm: { mean: number[]; std: number[] },
): ModelDef {
  const tokens = grid * grid;
  return {
    name: 'attention-probe',
    family: 'probe',
    inputShape: [channels, grid, grid],
    numClasses,
    featureDim: channels,
    bnneck: false,
    config: { head: 'attention', channels, grid, heads, numClasses },
    normalize: norm,
    build(ctx: LayerContext, input: Value) {
      const { b } = ctx;
      const pos = b.param('pos_embed', [1, tokens, channels], { kind: 'truncNormal', std: 0.02 });
      // No LayerNorm before the pooling: the input is already standardised per channel, and
      // normalising each token would scale noise-only tokens up to the size of salient ones.
      const x = b.add(b.transpose(b.reshape(input, [-1, channels, tokens]), [0, 2, 1]), pos);
      const pooled = b.scope('pool', () => attentionPool(ctx, x, channels, heads));
      const feature = layerNorm(ctx, pooled, 'norm_out', channels);
      return classifierHead(ctx, feature, channels, numClasses, { bnneck: false, name: 'head' });
    },
  };
}
