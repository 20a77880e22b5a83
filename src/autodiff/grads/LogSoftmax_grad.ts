import { GradientError } from '../../errors.js';
import type { GradRule } from '../types.js';

/** y = log softmax(x) over one axis: dx = dy − softmax(x) · Σ_axis dy, softmax = eʸ. */
export const logSoftmaxGrad: GradRule = {
  opType: 'LogSoftmax',
  grad: (ctx) => {
    const { b } = ctx;
    if (b.opset < 13)
      throw new GradientError(
        `LogSoftmax node ${ctx.node.name}: opset ${b.opset} semantics (input coerced to 2-D at ` +
          `axis) are not supported; only opset 13 and later`,
      );
    const y = ctx.O(0);
    const gy = ctx.GO(0)!;
    const r = y.shape!.length;
    const axis = ((ctx.attrs<{ axis: number }>().axis ?? -1) + r) % r;
    return [b.sub(gy, b.mul(b.exp(y), b.reduceSum(gy, [axis], true)))];
  },
};
