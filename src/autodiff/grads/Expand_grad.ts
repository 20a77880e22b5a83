import type { GradRule } from '../types.js';

/**
 * y = expand(x, shape) broadcasts x: dx = dy summed over the broadcast axes. That is
 * exactly the engine's broadcast undoing (reduceToShape), so the rule hands dy on as is.
 */
export const expandGrad: GradRule = {
  opType: 'Expand',
  grad: (ctx) => [ctx.GO(0), null],
};
