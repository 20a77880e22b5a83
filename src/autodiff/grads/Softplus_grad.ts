import type { GradRule } from '../types.js';

/** y = ln(1 + eˣ): dx = dy · σ(x). */
export const softplusGrad: GradRule = {
  opType: 'Softplus',
  grad: (ctx) => [ctx.b.mul(ctx.GO(0)!, ctx.b.sigmoid(ctx.I(0)!))],
};
