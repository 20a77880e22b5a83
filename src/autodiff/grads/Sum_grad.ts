import type { GradRule } from '../types.js';

/** y = Σ inputs (broadcast): every input gets dy. */
export const sumGrad: GradRule = {
  opType: 'Sum',
  grad: (ctx) => Array.from({ length: ctx.inputCount }, () => ctx.GO(0)),
};
