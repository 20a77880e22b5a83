import { GradientError } from '../../util/errors.js';
import type { GraphBuilder, Value } from '../../onnx/builder.js';
import type { GradContext } from '../types.js';

/**
 * The normalised reduced axes of a Reduce* node (attribute before opset 18, input for
 * ReduceSum from opset 13), or 'identity' when noop_with_empty_axes leaves x unchanged.
 */
export function reducedAxes(
  ctx: GradContext,
  axesInput: boolean,
): { axes: number[]; keepdims: boolean } | 'identity' {
  const x = ctx.I(0)!;
  const r = x.shape!.length;
  const a = ctx.attrs<{ axes: number[]; keepdims: number; noop_with_empty_axes: number }>();
  let axes: number[] | undefined = a.axes;
  if (axesInput && ctx.I(1)) {
    const known = ctx.b.knownInts(ctx.I(1)!);
    if (!known || known.some((d) => typeof d !== 'number')) {
      throw new GradientError(
        `node ${ctx.node.name} (${ctx.node.opType}): axes must be constant to differentiate`,
      );
    }
    axes = known as number[];
  }
  if (!axes || axes.length === 0) {
    if (a.noop_with_empty_axes) return 'identity';
    axes = [...Array(r).keys()];
  }
  return {
    axes: axes.map((v) => (v < 0 ? v + r : v)).sort((p, q) => p - q),
    keepdims: (a.keepdims ?? 1) === 1,
  };
}

/** Unsqueeze at `axes` in the form the graph's opset takes (attribute before opset 13). */
export function unsqueezeAt(b: GraphBuilder, v: Value, axes: number[]): Value {
  return b.opset >= 13 ? b.unsqueeze(v, axes) : b.op1('Unsqueeze', [v], { axes });
}

/** ReduceSum over `axes` with kept dims, in the form the graph's opset takes. */
export function reduceSumKeep(b: GraphBuilder, v: Value, axes: number[]): Value {
  return b.opset >= 13
    ? b.reduceSum(v, axes, true)
    : b.op1('ReduceSum', [v], { axes, keepdims: 1 });
}
