import type { GradRule } from '../types.js';

/** y = expand(x, shape): dx = dy summed over the expanded axes (the engine's broadcast undoing). */
export const expandGrad: GradRule = {
  opType: 'Expand',
  grad: (ctx) => [ctx.GO(0), null],
};
