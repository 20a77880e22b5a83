import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

interface ReduceAttrs {
  axes: number[];
  keepdims: number;
  noop_with_empty_axes: number;
}

/** y = mean of x over axes: dx = expand(dy) / count, count = product of reduced dims. */
export const reduceMeanGrad: GradRule = {
  opType: 'ReduceMean',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const shape = x.shape!;
    const r = shape.length;
    const { axes: given, keepdims = 1, noop_with_empty_axes = 0 } = ctx.attrs<ReduceAttrs>();
    let gy = ctx.GO(0)!;
    if (!given?.length && noop_with_empty_axes) return [gy];
    const axes = given?.length ? given.map((a) => (a < 0 ? a + r : a)) : [...Array(r).keys()];
    if (!keepdims) gy = b.unsqueeze(gy, axes);
    let count: Value;
    const dims = axes.map((a) => shape[a]!);
    if (dims.every((d) => typeof d === 'number')) {
      count = b.scalar(1 / dims.reduce((p: number, d) => p * d, 1), x.dtype);
    } else {
      const n = b.op1('ReduceProd', [b.gather(b.op1('Shape', [x]), b.ints(axes))], { keepdims: 0 });
      count = b.op1('Reciprocal', [b.op1('Cast', [n], { to: x.dtype === 'float64' ? 11 : 1 })]);
    }
    return [b.mul(b.op1('Expand', [gy, b.op1('Shape', [x])]), count)];
  },
};
