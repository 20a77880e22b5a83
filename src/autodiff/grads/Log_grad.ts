import type { GradRule } from '../types.js';

/** y = ln x: dx = dy / x. */
export const logGrad: GradRule = {
  opType: 'Log',
  grad: (ctx) => [ctx.b.div(ctx.GO(0)!, ctx.I(0)!)],
};
