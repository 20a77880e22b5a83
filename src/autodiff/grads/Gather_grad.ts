import { makeTensor } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';
import { isStatic, rankOf, zerosLike } from './shape-back.js';

/**
 * y = gather(x, idx, axis), y[p, i…, q] = x[p, idx[i…], q] with p the axes before `axis`
 * and q those after: dx = zeros(x) with dy scatter-ADDED at the gathered positions, so an
 * index that appears k times receives the sum of its k gradients.
 *
 * One ScatterND(reduction = 'add') does it with `axis` moved to the front: data
 * [D, p…, q…], indices idx[…, 1], updates dy transposed to [i…, p…, q…]. Negative indices
 * are valid ScatterND indices (counted from the end), as they are for Gather. For axis 0
 * no transpose is needed.
 */
export const gatherGrad: GradRule = {
  opType: 'Gather',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const idx = ctx.I(1)!;
    const r = rankOf(ctx, 0);
    const q = rankOf(ctx, 1);
    const a0 = ctx.attrs<{ axis: number }>().axis ?? 0;
    const axis = a0 < 0 ? a0 + r : a0;
    const idx64 = idx.dtype === 'int64' ? idx : b.op1('Cast', [idx], { to: 7 });
    const where = b.unsqueeze(idx64, [-1]);
    const gy = ctx.GO(0)!;
    if (axis === 0) {
      return [b.op1('ScatterND', [zerosLike(ctx, x), where, gy], { reduction: 'add' }), null];
    }
    // x: [p…(axis), D, q…]  ->  xt: [D, p…, q…]
    const front = [axis, ...range(0, axis), ...range(axis + 1, r)];
    // dy: [p…(axis), i…(q), q…]  ->  [i…, p…, q…]
    const dyPerm = [...range(axis, axis + q), ...range(0, axis), ...range(axis + q, r - 1 + q)];
    const shape = isStatic(x.shape)
      ? b.ints(front.map((k) => (x.shape as number[])[k]!))
      : b.op1('Gather', [b.op1('Shape', [x]), b.ints(front)], { axis: 0 });
    const zeros = b.op1('ConstantOfShape', [shape], { value: makeTensor(x.dtype, [1], [0]) });
    const updates = isIdentity(dyPerm) ? gy : b.transpose(gy, dyPerm);
    const s = b.op1('ScatterND', [zeros, where, updates], { reduction: 'add' });
    // [D, p…, q…] -> [p…, D, q…]
    const back = [...range(1, axis + 1), 0, ...range(axis + 1, r)];
    return [b.transpose(s, back), null];
  },
};

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function isIdentity(perm: number[]): boolean {
  return perm.every((p, i) => p === i);
}
