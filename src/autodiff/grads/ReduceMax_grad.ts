import type { Value } from '../../onnx/builder.js';
import { ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import type { GradContext, GradRule } from '../types.js';
import { reducedAxes, reduceSumKeep, unsqueezeAt } from './reduce.js';

/**
 * Gradient of ReduceMax/ReduceMin: dy goes to the positions equal to the extremum; when
 * several tie, it is split equally among them (so the gradient sums to dy, like the
 * subgradient PyTorch's amax uses).
 */
function extremumGrad(ctx: GradContext): (Value | null)[] {
  const { b } = ctx;
  const x = ctx.I(0)!;
  const ax = reducedAxes(ctx, b.opset >= 18);
  if (ax === 'identity') return [ctx.GO(0)];
  const y = ax.keepdims ? ctx.O(0) : unsqueezeAt(b, ctx.O(0), ax.axes);
  const gy = ax.keepdims ? ctx.GO(0)! : unsqueezeAt(b, ctx.GO(0)!, ax.axes);
  const mask = b.op1('Cast', [b.op1('Equal', [x, y])], { to: ONNX_DTYPE_CODE[x.dtype] });
  const count = reduceSumKeep(b, mask, ax.axes);
  return [b.mul(mask, b.div(gy, count))];
}

export const reduceMaxGrad: GradRule = { opType: 'ReduceMax', grad: extremumGrad };
export const reduceMinGrad: GradRule = { opType: 'ReduceMin', grad: extremumGrad };
