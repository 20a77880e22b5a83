import type { GradRule } from '../types.js';

/** y = x: dx = dy. */
export const identityGrad: GradRule = {
  opType: 'Identity',
  grad: (ctx) => [ctx.GO(0)],
};
