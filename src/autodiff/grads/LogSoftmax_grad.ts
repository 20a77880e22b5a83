import type { GradRule } from '../types.js';
import { softmaxAxis } from './softmax-axis.js';

/** y = log softmax(x) over one axis: dx = dy − softmax(x) · Σ_axis dy, softmax = eʸ. */
export const logSoftmaxGrad: GradRule = {
  opType: 'LogSoftmax',
  grad: (ctx) => {
    const { b } = ctx;
    const axis = softmaxAxis(ctx);
    const gy = ctx.GO(0)!;
    return [b.sub(gy, b.mul(b.exp(ctx.O(0)), b.reduceSum(gy, [axis], true)))];
  },
};
