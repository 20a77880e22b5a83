import type { GraphBuilder, Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';

interface BatchNormAttrs {
  epsilon: number;
  momentum: number;
  training_mode: number;
}

/**
 * y = scale · x̂ + B with x̂ = (x − μ) / √(σ² + ε), per channel (axis 1); the statistics
 * run over every other axis (m = N·H·W·… elements per channel).
 *
 * Training mode (training_mode = 1): μ and σ² are the batch mean and biased variance of
 * x, so they depend on x. With g = dy:
 *   dB = Σ g,  dscale = Σ g·x̂,
 *   dx = scale / √(σ² + ε) · (g − (Σ g + x̂ · Σ g·x̂) / m),
 * written with x − μ in place of x̂ so that x̂ is never materialised.
 * The statistics are recomputed here (two reductions): the forward's outputs 1 and 2 are
 * running averages, from which the batch statistics cannot be recovered reliably. Those
 * two outputs carry no gradient (they feed the next step's buffers, not the loss).
 *
 * Inference mode: μ = input_mean and σ² = input_var are inputs, so dx = scale·g/√(σ²+ε),
 * dmean = −Σ g · scale/√(σ²+ε), dvar = −½ Σ g·(x−μ) · scale·(σ²+ε)^(−3/2).
 */
export const batchNormalizationGrad: GradRule = {
  opType: 'BatchNormalization',
  grad: (ctx) => {
    const { b } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0);
    if (!gy) return [null, null, null, null, null];
    const { epsilon = 1e-5, training_mode = 0 } = ctx.attrs<BatchNormAttrs>();
    const r = x.shape!.length;
    const axes = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2)];
    const dt = x.dtype;
    const eps = b.scalar(epsilon, dt);
    const perChannel = (v: Value) => channelView(b, v, r);
    const scale = perChannel(ctx.I(1)!);
    const flat = (v: Value) => b.reshape(v, [-1]);

    if (training_mode) {
      const mean = b.reduceMean(x, axes);
      const xc = b.sub(x, mean);
      const variance = b.reduceMean(b.mul(xc, xc), axes);
      const invStd = b.op1('Reciprocal', [b.sqrt(b.add(variance, eps))]);
      const sumG = b.reduceSum(gy, axes);
      const sumGxc = b.reduceSum(b.mul(gy, xc), axes);
      let dx: Value | null = null;
      if (ctx.needsGrad(0)) {
        // dx = k·g − k/m·Σg − x_c · k/√(σ²+ε)² · Σ(g·x_c)/m with k = scale/√(σ²+ε): the
        // per-channel factors are formed first, leaving four full-size ops.
        const invM = invCount(b, x);
        const k = b.mul(scale, invStd);
        const kInvM = b.mul(k, invM);
        const a = b.neg(b.mul(b.mul(kInvM, b.mul(invStd, invStd)), sumGxc));
        const c = b.neg(b.mul(kInvM, sumG));
        dx = b.add(b.mul(gy, k), b.add(b.mul(xc, a), c));
      }
      return [
        dx,
        ctx.needsGrad(1) ? flat(b.mul(sumGxc, invStd)) : null,
        ctx.needsGrad(2) ? flat(sumG) : null,
        null,
        null,
      ];
    }

    const mean = perChannel(ctx.I(3)!);
    const invStd = b.op1('Reciprocal', [b.sqrt(b.add(perChannel(ctx.I(4)!), eps))]);
    const k = b.mul(scale, invStd);
    const xc = ctx.needsGrad(1) || ctx.needsGrad(4) ? b.sub(x, mean) : null;
    const sumG = ctx.needsGrad(2) || ctx.needsGrad(3) ? b.reduceSum(gy, axes) : null;
    const sumGxc =
      xc && (ctx.needsGrad(1) || ctx.needsGrad(4)) ? b.reduceSum(b.mul(gy, xc), axes) : null;
    return [
      ctx.needsGrad(0) ? b.mul(gy, k) : null,
      ctx.needsGrad(1) ? flat(b.mul(sumGxc!, invStd)) : null,
      ctx.needsGrad(2) ? flat(sumG!) : null,
      ctx.needsGrad(3) ? flat(b.neg(b.mul(sumG!, k))) : null,
      ctx.needsGrad(4)
        ? flat(b.mul(b.mul(sumGxc!, b.mul(k, b.mul(invStd, invStd))), b.scalar(-0.5, dt)))
        : null,
    ];
  },
};

/** A per-channel [C] vector shaped [C, 1, …] to broadcast against [N, C, spatial…]. */
function channelView(b: GraphBuilder, v: Value, rank: number): Value {
  return rank > 2
    ? b.unsqueeze(
        v,
        Array.from({ length: rank - 2 }, (_, i) => i + 1),
      )
    : v;
}

/** 1/m, m = number of elements per channel (a constant when x's shape is static). */
function invCount(b: GraphBuilder, x: Value): Value {
  const s = x.shape!;
  const dims = [s[0], ...s.slice(2)];
  if (dims.every((d) => typeof d === 'number')) {
    return b.scalar(1 / dims.reduce((p, d) => p * d, 1), x.dtype);
  }
  const to = x.dtype === 'float64' ? 11 : 1;
  const size = b.op1('Cast', [b.op1('Size', [x])], { to });
  const channels = b.op1('Cast', [b.gather(b.op1('Shape', [x]), b.ints([1]))], { to });
  return b.div(channels, size);
}
