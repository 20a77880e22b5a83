import { GradientError } from '../../util/errors.js';
import type { Value } from '../../onnx/builder.js';
import type { GradContext, GradRule } from '../types.js';
import { dimOf, isStatic } from './shape-back.js';

interface ResizeAttrs {
  mode: string;
  coordinate_transformation_mode: string;
  nearest_mode: string;
}

/**
 * The input index that output index `o` reads along one axis under nearest-neighbour
 * Resize (ONNX's definition: map o back with the coordinate transformation, round with
 * the nearest mode, clamp to the input).
 * @param o - output index
 * @param inLen - input length along the axis
 * @param outLen - output length
 * @param ctm - coordinate_transformation_mode
 * @param nearest - nearest_mode
 */
export function nearestSource(
  o: number,
  inLen: number,
  outLen: number,
  ctm: string,
  nearest: string,
): number {
  const scale = outLen / inLen;
  let x: number;
  switch (ctm) {
    case 'half_pixel':
      x = (o + 0.5) / scale - 0.5;
      break;
    case 'pytorch_half_pixel':
      x = outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
      break;
    case 'align_corners':
      x = outLen > 1 ? (o * (inLen - 1)) / (outLen - 1) : 0;
      break;
    case 'asymmetric':
      x = o / scale;
      break;
    default:
      throw new RangeError(`coordinate_transformation_mode '${ctm}'`);
  }
  let i: number;
  switch (nearest) {
    case 'round_prefer_floor':
      i = x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
      break;
    case 'round_prefer_ceil':
      i = Math.round(x);
      break;
    case 'floor':
      i = Math.floor(x);
      break;
    case 'ceil':
      i = Math.ceil(x);
      break;
    default:
      throw new RangeError(`nearest_mode '${nearest}'`);
  }
  return Math.min(inLen - 1, Math.max(0, i));
}

/**
 * Nearest-neighbour Resize by whole factors (U-Net upsampling): when, along every axis,
 * the output length is s times the input length and output index o reads input index
 * floor(o / s), each input element is copied into an s-block of the output, so its
 * gradient is the sum of dy over that block:
 * dx = ReduceSum(Reshape(dy, [d0, s0, d1, s1, ...]), axes of the s's).
 * Which input index each output reads is computed from the node's coordinate
 * transformation and nearest mode, so any attribute combination that amounts to block
 * copying is accepted (half_pixel with round_prefer_floor, asymmetric with floor, ...).
 * Other modes (linear, cubic), fractional factors, downsampling, or a mapping that is not
 * block copying (align_corners) fail with a GradientError naming the node.
 * roi, scales and sizes get no gradient.
 */
export const resizeGrad: GradRule = {
  opType: 'Resize',
  grad: (ctx) => {
    const x = ctx.I(0)!;
    const y = ctx.O(0);
    const a = ctx.attrs<ResizeAttrs>();
    const mode = a.mode ?? 'nearest';
    const ctm = a.coordinate_transformation_mode ?? 'half_pixel';
    const nearest = a.nearest_mode ?? 'round_prefer_floor';
    const fail = (why: string): never => {
      throw new GradientError(`Resize node ${ctx.node.name}: ${why}`);
    };
    if (mode !== 'nearest') fail(`mode '${mode}' has no gradient rule (only 'nearest')`);
    if (!x.shape || !y.shape || x.shape.length !== y.shape.length) {
      fail('the ranks of input and output must be known');
    }
    const xs = x.shape!;
    const ys = y.shape!;
    const factors = xs.map((d, k) => {
      const o = ys[k]!;
      if (d === o) return 1;
      if (typeof d !== 'number' || typeof o !== 'number') {
        fail(`axis ${k}: sizes ${d} -> ${o} must be static where they differ`);
      }
      const s = (o as number) / (d as number);
      if (!Number.isInteger(s) || s < 1) {
        fail(`axis ${k}: ${d} -> ${o} is not upsampling by a whole factor`);
      }
      for (let i = 0; i < (o as number); i++) {
        let src: number;
        try {
          src = nearestSource(i, d as number, o as number, ctm, nearest);
        } catch (err) {
          return fail(`unsupported ${(err as Error).message}`);
        }
        if (src !== Math.floor(i / s)) {
          fail(
            `axis ${k}: coordinate_transformation_mode '${ctm}' with nearest_mode '${nearest}' does not copy blocks of ${s} (output ${i} reads input ${src})`,
          );
        }
      }
      return s;
    });
    return [blockSum(ctx, x, factors), null, null, null];
  },
};

/** dy [.., d_k·s_k, ..] -> dx [.., d_k, ..]: split each upsampled axis, sum the copies. */
function blockSum(ctx: GradContext, x: Value, factors: number[]): Value {
  const { b } = ctx;
  const gy = ctx.GO(0)!;
  const xs = x.shape!;
  const split: number[] = [];
  const axes: number[] = [];
  factors.forEach((s, k) => {
    split.push(typeof xs[k] === 'number' ? xs[k] : -1);
    if (s > 1) {
      axes.push(split.length);
      split.push(s);
    }
  });
  if (axes.length === 0) return gy;
  let target: Value;
  if (split.filter((d) => d === -1).length <= 1 || isStatic(xs)) target = b.ints(split);
  else {
    // Several symbolic dims: read them from x at run time.
    const parts: Value[] = [];
    factors.forEach((s, k) => {
      parts.push(typeof xs[k] === 'number' ? b.ints([xs[k]]) : dimOf(b, x, k));
      if (s > 1) parts.push(b.ints([s]));
    });
    target = b.concat(parts, 0);
  }
  const blocks = b.op1('Reshape', [gy, target]);
  return b.opset >= 13
    ? b.reduceSum(blocks, axes, false)
    : b.op1('ReduceSum', [blocks], { axes, keepdims: 0 });
}
