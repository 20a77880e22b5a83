import { float32 } from '../onnx/tensor.js';
import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';

/**
 * GroupNorm over an NCHW tensor (PyTorch's nn.GroupNorm: `weight` ones, `bias` zeros, one
 * per channel). Built from ops every ONNX Runtime runs and differentiates: the groups are
 * reshaped to [N, G, (C/G)·H·W], normalised by LayerNormalization over the last axis with
 * a constant unit scale, reshaped back, then scaled and shifted per channel. (The
 * GroupNormalization op needs opset 18 and has no gradient rule here.)
 * @param ctx - layer context
 * @param x - input [N, C, H, W] with static C, H, W
 * @param name - scope, e.g. 'norm1'
 * @param channels - C
 * @param groups - G, dividing C
 * @param eps - added to the variance (PyTorch default 1e-5)
 * @example
 * const h = groupNorm(ctx, x, 'norm1', 64, 8);
 */
export function groupNorm(
  ctx: LayerContext,
  x: Value,
  name: string,
  channels: number,
  groups: number,
  eps = 1e-5,
): Value {
  const { b } = ctx;
  const shape = x.shape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number')) {
    throw new RangeError(`group norm '${b.qualify(name)}': needs [N, C, H, W] with static C, H, W`);
  }
  const [, c, h, w] = shape as [unknown, number, number, number];
  if (c !== channels) {
    throw new RangeError(
      `group norm '${b.qualify(name)}': input has ${c} channels, expected ${channels}`,
    );
  }
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new RangeError(
      `group norm '${b.qualify(name)}': ${groups} groups do not divide ${channels} channels`,
    );
  }
  const per = (channels / groups) * h * w;
  return b.scope(name, () => {
    const weight = b.param('weight', [channels], { kind: 'ones' });
    const bias = b.param('bias', [channels], { kind: 'zeros' });
    const unit = b.constant(float32([per], new Float32Array(per).fill(1)), 'gn_unit_scale');
    const grouped = b.reshape(x, [-1, groups, per]);
    const normed = b.reshape(b.layerNorm(grouped, unit, null, eps, -1), [-1, channels, h, w]);
    const scale = b.reshape(weight, [1, channels, 1, 1]);
    const shift = b.reshape(bias, [1, channels, 1, 1]);
    return b.add(b.mul(normed, scale), shift);
  });
}
