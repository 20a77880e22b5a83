import type { GraphBuilder, Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';
import { dimOf, rankOf } from './shape-back.js';

/**
 * y = concat(x₀, x₁, …; axis): input i receives dy[…, o_i : o_i + n_i, …] along the axis,
 * with o_i the sum of the earlier inputs' sizes n_j. Sizes known statically become constant
 * Slice bounds; a size known only at run time is read with Shape(x_i)[axis] and the
 * later offsets are summed in the graph.
 */
export const concatGrad: GradRule = {
  opType: 'Concat',
  grad: (ctx) => {
    const { b } = ctx;
    const gy = ctx.GO(0)!;
    const r = rankOf(ctx, 0);
    const a0 = ctx.attrs<{ axis: number }>().axis ?? 0;
    const axis = a0 < 0 ? a0 + r : a0;
    // Offset so far: a number while every earlier size is static, else a [1] int64 value.
    let offset: number | Value = 0;
    const out: (Value | null)[] = [];
    for (let i = 0; i < ctx.inputCount; i++) {
      const x = ctx.I(i)!;
      const d = x.shape?.[axis];
      const size: number | Value = typeof d === 'number' ? d : dimOf(b, x, axis);
      const end: number | Value =
        typeof offset === 'number' && typeof size === 'number'
          ? offset + size
          : b.add(asInts(b, offset), asInts(b, size));
      if (ctx.needsGrad(i)) {
        out.push(
          typeof offset === 'number' && typeof end === 'number'
            ? b.slice(gy, [offset], [end], [axis])
            : b.op1('Slice', [gy, asInts(b, offset), asInts(b, end), b.ints([axis])]),
        );
      } else out.push(null);
      offset = end;
    }
    return out;
  },
};

function asInts(b: GraphBuilder, v: number | Value): Value {
  return typeof v === 'number' ? b.ints([v]) : v;
}
