import { GradientError } from '../../errors.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';

/** ys = split(x, axis): dx = concat of the dys, zeros for outputs that get no gradient. */
export const splitGrad: GradRule = {
  opType: 'Split',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const r = x.shape!.length;
    const axis = ((ctx.attrs<{ axis: number }>().axis ?? 0) + r) % r;
    const parts = ctx.node.outputs.map((_, i) => {
      const g = ctx.GO(i);
      if (g) return g;
      const o = ctx.O(i);
      if (!o.shape?.every((d) => typeof d === 'number')) {
        return b.op1('ConstantOfShape', [b.op1('Shape', [o])], {
          value: makeTensor(o.dtype, [1], [0]),
        });
      }
      if (!o.shape) throw new GradientError(`Split node ${ctx.node.name}: unknown output shape`);
      return b.constant(makeTensor(o.dtype, o.shape as number[]), 'zeros');
    });
    return [b.concat(parts, axis), null];
  },
};
