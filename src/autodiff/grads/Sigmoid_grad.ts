import type { GradRule } from '../types.js';

/** y = σ(x): dx = dy · y (1 − y). */
export const sigmoidGrad: GradRule = {
  opType: 'Sigmoid',
  grad: (ctx) => {
    const { b } = ctx;
    const y = ctx.O(0);
    return [b.mul(ctx.GO(0)!, b.mul(y, b.sub(b.scalar(1, y.dtype), y)))];
  },
};
