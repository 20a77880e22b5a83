import type { GradRule } from '../types.js';

/** y = a + b: both inputs receive dy (the engine undoes broadcasting). */
export const addGrad: GradRule = {
  opType: 'Add',
  grad: (ctx) => [ctx.GO(0), ctx.GO(0)],
};
