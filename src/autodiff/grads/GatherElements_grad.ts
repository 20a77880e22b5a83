import type { GradRule } from '../types.js';
import { zerosLike } from './shape-back.js';

/**
 * y = gather_elements(x, idx, axis), e.g. for axis 1 y[i, j] = x[i, idx[i, j]]:
 * dx = zeros(x) with dy scatter-ADDED back by the same indices, one
 * ScatterElements(reduction = 'add') (opset 16+), so repeated indices sum. Negative indices
 * count from the end in both ops.
 */
export const gatherElementsGrad: GradRule = {
  opType: 'GatherElements',
  grad: (ctx) => {
    const axis = ctx.attrs<{ axis: number }>().axis ?? 0;
    const x = ctx.I(0)!;
    return [
      ctx.b.op1('ScatterElements', [zerosLike(ctx, x), ctx.I(1)!, ctx.GO(0)!], {
        axis,
        reduction: 'add',
      }),
      null,
    ];
  },
};
