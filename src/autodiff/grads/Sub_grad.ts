import type { GradRule } from '../types.js';

/** y = a - b: da = dy, db = -dy. */
export const subGrad: GradRule = {
  opType: 'Sub',
  grad: (ctx) => {
    const gy = ctx.GO(0)!;
    return [gy, ctx.needsGrad(1) ? ctx.b.neg(gy) : null];
  },
};
