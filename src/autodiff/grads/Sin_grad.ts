import type { GradRule } from '../types.js';

/** y = sin x: dx = dy · cos x. */
export const sinGrad: GradRule = {
  opType: 'Sin',
  grad: (ctx) => [ctx.b.mul(ctx.GO(0)!, ctx.b.op1('Cos', [ctx.I(0)!]))],
};
