import type { Value } from '../../onnx/builder.js';
import type { Dim } from '../../onnx/ir.js';
import { sliceLength } from '../../onnx/shape-rules/tensor.js';
import { makeTensor, numel } from '../../onnx/tensor.js';
import type { GradContext, GradRule } from '../types.js';
import { isStatic } from './shape-back.js';

/**
 * y = x[starts : ends : steps] on `axes`: dx is dy scattered back into zeros of x's shape
 * at the positions the slice read (a slice reads each element at most once, so no adding).
 *
 * - Steps all 1, constant parameters and static sliced dims: one Pad of dy with zeros,
 *   `s` before and `n - s - len` after on each sliced axis (`s`, `len` after ONNX's
 *   clamping of starts/ends).
 * - Otherwise (other steps, negative steps included, or bounds known only at run time):
 *   the same Slice applied to the flat positions `0 … numel(x)-1` arranged in x's shape
 *   gives, for each element of y, its flat position in x; one ScatterElements puts dy
 *   there.
 */
export const sliceGrad: GradRule = {
  opType: 'Slice',
  grad: (ctx) => [padBack(ctx) ?? scatterBack(ctx), null, null, null, null],
};

function padBack(ctx: GradContext): Value | null {
  const { b } = ctx;
  const x = ctx.I(0)!;
  const shape = x.shape;
  if (!shape) return null;
  const r = shape.length;
  const known = (i: number): number[] | undefined => {
    const v = ctx.I(i);
    const k = v ? b.knownInts(v) : undefined;
    return k && k.every((d): d is number => typeof d === 'number') ? k : undefined;
  };
  const starts = known(1);
  const ends = known(2);
  const axes = ctx.I(3) ? known(3) : starts?.map((_, i) => i);
  const steps = ctx.I(4) ? known(4) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) return null;
  if (steps.some((s) => s !== 1)) return null;
  const pads = new Array<number>(2 * r).fill(0);
  for (let i = 0; i < axes.length; i++) {
    const a = axes[i]! < 0 ? axes[i]! + r : axes[i]!;
    const n: Dim | undefined = shape[a];
    if (typeof n !== 'number') return null;
    const [s, len] = sliceLength(n, starts[i]!, ends[i]!, 1);
    pads[a] = s;
    pads[a + r] = n - s - len;
  }
  return b.op1('Pad', [ctx.GO(0)!, b.ints(pads)]);
}

function scatterBack(ctx: GradContext): Value {
  const { b } = ctx;
  const x = ctx.I(0)!;
  // A 0 in x's shape means size 0, not "copy this dim" (empty slices of empty tensors).
  const allowzero = b.opset >= 14 ? 1 : undefined;
  const xShape = isStatic(x.shape) ? b.ints(x.shape) : b.op1('Shape', [x]);
  const count = isStatic(x.shape) ? b.scalar(numel(x.shape), 'int64') : b.op1('Size', [x]);
  const flat = b.op1('Range', [b.scalar(0, 'int64'), count, b.scalar(1, 'int64')]);
  // The forward node's own starts/ends/axes/steps (omitted trailing ones stay omitted).
  const params = [1, 2, 3, 4].slice(0, ctx.inputCount - 1).map((i) => ctx.I(i));
  const positions = b.op1('Slice', [b.op1('Reshape', [flat, xShape], { allowzero }), ...params]);
  const zeros = b.op1('ConstantOfShape', [b.op1('Shape', [flat])], {
    value: makeTensor(x.dtype, [1], [0]),
  });
  const scattered = b.op1(
    'ScatterElements',
    [zeros, b.reshape(positions, [-1]), b.reshape(ctx.GO(0)!, [-1])],
    { axis: 0 },
  );
  return b.op1('Reshape', [scattered, xShape], { allowzero });
}
