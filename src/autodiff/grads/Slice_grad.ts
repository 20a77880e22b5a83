import { GradientError } from '../../errors.js';
import { sliceLength } from '../../onnx/shape-rules/tensor.js';
import type { GradRule } from '../types.js';

/**
 * y = x[starts:ends] with steps 1 and constant parameters: dx = dy padded with zeros back
 * to x's shape (one Pad). Other steps raise a GradientError naming the node.
 */
export const sliceGrad: GradRule = {
  opType: 'Slice',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const shape = x.shape!;
    const r = shape.length;
    const get = (i: number) => (ctx.I(i) ? b.knownInts(ctx.I(i)!) : undefined);
    const starts = get(1);
    const ends = get(2);
    const axes = ctx.I(3) ? get(3) : starts?.map((_, i) => i);
    const steps = ctx.I(4) ? get(4) : starts?.map(() => 1);
    const ints = (v: unknown[] | undefined) =>
      v !== undefined && v.every((d) => typeof d === 'number');
    if (!ints(starts) || !ints(ends) || !ints(axes) || !ints(steps)) {
      throw new GradientError(
        `Slice node ${ctx.node.name}: starts/ends/axes/steps must be constants to differentiate`,
      );
    }
    const pads = new Array<number>(2 * r).fill(0);
    (axes as number[]).forEach((a0, i) => {
      const a = a0 < 0 ? a0 + r : a0;
      const n = shape[a];
      if ((steps as number[])[i] !== 1)
        throw new GradientError(
          `Slice node ${ctx.node.name}: step ${(steps as number[])[i]} is not supported`,
        );
      if (typeof n !== 'number')
        throw new GradientError(`Slice node ${ctx.node.name}: axis ${a} has a dynamic size`);
      const [s, len] = sliceLength(n, (starts as number[])[i]!, (ends as number[])[i]!, 1);
      pads[a] = s;
      pads[a + r] = n - s - len;
    });
    return [b.op1('Pad', [ctx.GO(0)!, b.ints(pads)]), null, null, null, null];
  },
};
