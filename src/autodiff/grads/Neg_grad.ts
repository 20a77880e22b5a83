import type { GradRule } from '../types.js';

/** y = −x: dx = −dy. */
export const negGrad: GradRule = {
  opType: 'Neg',
  grad: (ctx) => [ctx.b.neg(ctx.GO(0)!)],
};
