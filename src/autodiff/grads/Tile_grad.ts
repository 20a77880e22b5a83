import type { Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';
import { isStatic, rankOf } from './shape-back.js';

/**
 * y = tile(x, repeats): along axis k, y[t·d_k + i] = x[i] for tile t < r_k, i < d_k.
 * Splitting each tiled axis of dy into [r_k, d_k] (row-major, so the tile index is the
 * outer one) and summing over the r_k axes gives dx = Σ_t dy[t·d_k + i].
 * With static repeats and dims, axes with r_k = 1 are left unsplit; otherwise the
 * interleaved shape [r₀, d₀, r₁, d₁, …] is built at run time from `repeats` and Shape(x).
 */
export const tileGrad: GradRule = {
  opType: 'Tile',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0)!;
    const r = rankOf(ctx);
    const known = b.knownInts(ctx.I(1)!);
    if (known && known.every((v) => typeof v === 'number') && isStatic(x.shape)) {
      const reps = known;
      const dims: number[] = [];
      const axes: number[] = [];
      x.shape.forEach((d, k) => {
        if (reps[k] !== 1) {
          axes.push(dims.length);
          dims.push(reps[k]!);
        }
        dims.push(d);
      });
      if (axes.length === 0) return [gy, null];
      return [b.reduceSum(b.reshape(gy, dims), axes, false), null];
    }
    const column = (v: Value) => b.unsqueeze(v, [1]);
    const pairs = b.concat([column(ctx.I(1)!), column(b.op1('Shape', [x]))], 1);
    const split = b.op1('Reshape', [gy, b.reshape(pairs, [-1])]);
    const axes = Array.from({ length: r }, (_, k) => 2 * k);
    return [b.reduceSum(split, axes, false), null];
  },
};
