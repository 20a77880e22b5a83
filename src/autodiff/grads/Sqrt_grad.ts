import type { GradRule } from '../types.js';

/** y = √x: dx = dy / (2y) (reusing the forward output). */
export const sqrtGrad: GradRule = {
  opType: 'Sqrt',
  grad: (ctx) => {
    const { b } = ctx;
    const y = ctx.O(0);
    return [b.div(ctx.GO(0)!, b.mul(y, b.scalar(2, y.dtype)))];
  },
};
