import { GradientError } from '../../errors.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';

/**
 * y = gather(x, indices, axis): dx = zeros(x) with dy scatter-added along the axis
 * (repeated indices add up). x is viewed as [P, D, Q] around the axis and dy as
 * [P, K, Q] (K = number of indices), then one ScatterElements(reduction='add').
 */
export const gatherGrad: GradRule = {
  opType: 'Gather',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const idx = ctx.I(1)!;
    const shape = x.shape!;
    const r = shape.length;
    const axis = ((ctx.attrs<{ axis: number }>().axis ?? 0) + r) % r;
    if (!shape.every((d) => typeof d === 'number'))
      throw new GradientError(`Gather node ${ctx.node.name}: data shape must be static`);
    const dims = shape as number[];
    const p = dims.slice(0, axis).reduce((a, d) => a * d, 1);
    const d = dims[axis]!;
    const q = dims.slice(axis + 1).reduce((a, v) => a * v, 1);
    const g3 = b.reshape(ctx.GO(0)!, [p, -1, q]);
    const i64 = idx.dtype === 'int64' ? idx : b.op1('Cast', [idx], { to: 7 });
    const i3 = b.op1('Expand', [b.reshape(i64, [1, -1, 1]), b.op1('Shape', [g3])]);
    const zeros = b.constant(makeTensor(x.dtype, [p, d, q]), 'zeros');
    const s = b.op1('ScatterElements', [zeros, i3, g3], { axis: 1, reduction: 'add' });
    return [b.reshape(s, dims), null];
  },
};
