import type { GradRule } from '../types.js';

/** y = 1/x: dx = −dy · y² (reusing the forward output). */
export const reciprocalGrad: GradRule = {
  opType: 'Reciprocal',
  grad: (ctx) => {
    const { b } = ctx;
    const y = ctx.O(0);
    return [b.mul(ctx.GO(0)!, b.mul(b.neg(y), y))];
  },
};
