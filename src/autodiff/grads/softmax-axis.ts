import { GradientError } from '../../util/errors.js';
import type { GradContext } from '../types.js';

/**
 * The normalised axis of a Softmax/LogSoftmax node. Only opset ≥ 13 semantics (one axis)
 * are differentiated; older opsets coerce the input to 2-D, which is refused here.
 */
export function softmaxAxis(ctx: GradContext): number {
  const { b, node } = ctx;
  if (b.opset < 13) {
    throw new GradientError(
      `${node.opType} node ${node.name}: opset ${b.opset} semantics (input coerced to 2-D at ` +
        `axis) are not supported; only opset 13 and later`,
    );
  }
  const r = ctx.O(0).shape!.length;
  return ((ctx.attrs<{ axis: number }>().axis ?? -1) + r) % r;
}
