import type { GradRule } from '../types.js';

/** y = (1/n) Σ of n inputs (broadcast): every input gets dy / n; the engine undoes broadcasting. */
export const meanGrad: GradRule = {
  opType: 'Mean',
  grad: (ctx) => {
    const { b } = ctx;
    const gy = ctx.GO(0)!;
    const n = ctx.inputCount;
    const share = n === 1 ? gy : b.mul(gy, b.scalar(1 / n, gy.dtype));
    return Array.from({ length: n }, (_, i) => (ctx.needsGrad(i) ? share : null));
  },
};
