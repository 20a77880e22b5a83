import type { GradRule } from '../types.js';

/** y = eˣ: dx = dy · y. */
export const expGrad: GradRule = {
  opType: 'Exp',
  grad: (ctx) => [ctx.b.mul(ctx.GO(0)!, ctx.O(0))],
};
