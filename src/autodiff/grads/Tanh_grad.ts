import type { GradRule } from '../types.js';

/** y = tanh x: dx = dy · (1 − y²). */
export const tanhGrad: GradRule = {
  opType: 'Tanh',
  grad: (ctx) => {
    const { b } = ctx;
    const y = ctx.O(0);
    return [b.mul(ctx.GO(0)!, b.sub(b.scalar(1, y.dtype), b.mul(y, y)))];
  },
};
