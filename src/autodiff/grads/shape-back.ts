import { GradientError } from '../../util/errors.js';
import type { GraphBuilder, Value } from '../../onnx/builder.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradContext } from '../types.js';

/**
 * dy reshaped back to the shape of input `i`: a static int64 constant when that shape is
 * fully known, else `Shape(x)` at run time. `allowzero = 1` (opset 14+) keeps a 0 in the
 * target meaning "size 0" rather than "copy dy's dim", so empty tensors reshape correctly.
 */
export function reshapeBack(ctx: GradContext, i = 0): Value {
  const { b } = ctx;
  const x = ctx.I(i)!;
  const gy = ctx.GO(0)!;
  const allowzero = b.opset >= 14 ? 1 : undefined;
  if (x.shape && x.shape.every((d) => typeof d === 'number')) {
    const dims = x.shape;
    if (!dims.includes(0)) return b.reshape(gy, dims);
    return b.op1('Reshape', [gy, b.ints(dims)], { allowzero });
  }
  return b.op1('Reshape', [gy, b.op1('Shape', [x])], { allowzero });
}

/** The rank of input `i`, or a GradientError naming the node when it is unknown. */
export function rankOf(ctx: GradContext, i = 0): number {
  const s = ctx.I(i)?.shape;
  if (!s)
    throw new GradientError(
      `${ctx.node.opType} node ${ctx.node.name}: rank of input ${i} is unknown`,
    );
  return s.length;
}

/** Whether every dim is a known number. */
export function isStatic(shape: readonly unknown[] | null | undefined): shape is number[] {
  return !!shape && shape.every((d) => typeof d === 'number');
}

/** Zeros shaped like `like`: a ConstantOfShape node (static dims as a tiny constant), never a big initializer. */
export function zerosLike(ctx: GradContext, like: Value): Value {
  const { b } = ctx;
  const shape = isStatic(like.shape) ? b.ints(like.shape) : b.op1('Shape', [like]);
  return b.op1('ConstantOfShape', [shape], { value: makeTensor(like.dtype, [1], [0]) });
}

/** The size of `x` along `axis` at run time, as a 1-element int64 tensor. */
export function dimOf(b: GraphBuilder, x: Value, axis: number): Value {
  if (b.opset >= 15) return b.op1('Shape', [x], { start: axis, end: axis + 1 });
  return b.op1('Gather', [b.op1('Shape', [x]), b.ints([axis])], { axis: 0 });
}
