import type { GradRule } from '../types.js';

/** y = erf x: dx = dy · (2/√π) e^(−x²). */
export const erfGrad: GradRule = {
  opType: 'Erf',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const e = b.exp(b.neg(b.mul(x, x)));
    return [b.mul(ctx.GO(0)!, b.mul(e, b.scalar(2 / Math.sqrt(Math.PI), x.dtype)))];
  },
};
