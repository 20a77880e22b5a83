import { GradientError } from '../../util/errors.js';
import type { GraphBuilder, Value } from '../../onnx/builder.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradContext, GradRule } from '../types.js';
import { effectiveKernel, resolveWindow, transposeGeometry, type Window } from './window.js';

interface MaxPoolAttrs {
  auto_pad: string;
  ceil_mode: number;
  dilations: number[];
  kernel_shape: number[];
  pads: number[];
  storage_order: number;
  strides: number[];
}

/**
 * y[p] = max over window p of x: each dy[p] flows to the arg-max position of its window
 * (the first maximum on ties, as ONNX Runtime picks it); overlapping windows add up.
 *
 * A rule cannot change the forward node, so the arg-max is recomputed in the backward
 * graph, in one of two ways:
 * - float32 (the fast path): one strided Slice of the −∞-padded x per kernel offset k,
 *   stacked into x_k[n, c, k, p]; ArgMax over k (first maximum) and a comparison with
 *   0…K−1 give a one-hot mask, mask·dy is spread back onto x by a single ConvTranspose
 *   whose K input channels carry one-hot kernels (channels folded into the batch).
 * - other float types (ONNX Runtime's ConvTranspose is float32-only): the second output
 *   `Indices` of MaxPool (flat row-major positions in x; the forward's own when it has
 *   them with storage_order 0, else a second MaxPool in the backward graph) and
 *   dx = ScatterElements(zeros(numel x), indices, dy, reduction 'add') on the flattened
 *   tensors. Slower: ONNX Runtime's indexed MaxPool and ScatterElements are scalar loops.
 */
export const maxPoolGrad: GradRule = {
  opType: 'MaxPool',
  grad: (ctx) => {
    const { b, node } = ctx;
    const x = ctx.I(0)!;
    const gy = ctx.GO(0);
    if (!gy) return [null];
    const a = ctx.attrs<MaxPoolAttrs>();
    if (!a.kernel_shape?.length)
      throw new GradientError(`MaxPool node '${node.name}' has no kernel_shape`);
    const win = resolveWindow(node, a, a.kernel_shape, x, ctx.O(0));
    if (x.dtype === 'float32') return [sliceArgMaxGrad(b, win, x, gy)];
    return [scatterGrad(ctx, win, x, gy, a)];
  },
};

function sliceArgMaxGrad(b: GraphBuilder, win: Window, x: Value, gy: Value): Value {
  const r = win.rank;
  const c = x.shape![1];
  const kk = win.kernel.reduce((p, k) => p * k, 1);
  const spatialAxes = Array.from({ length: r }, (_, i) => i + 2);
  // Pad so that every window lies inside: the forward's pads, plus the overhang of a
  // ceil_mode last window. Padding is −∞, which the forward never picks either.
  const endPads = win.pads.slice(r).map((p, i) => {
    const need = win.strides[i]! * (win.outSize[i]! - 1) + effectiveKernel(win, i);
    return Math.max(p, need - win.inSize[i]! - win.pads[i]!);
  });
  let xp = x;
  if ([...win.pads.slice(0, r), ...endPads].some((p) => p !== 0)) {
    xp = b.op1('Pad', [
      x,
      b.ints([0, 0, ...win.pads.slice(0, r), 0, 0, ...endPads]),
      b.scalar(Number.NEGATIVE_INFINITY, x.dtype),
    ]);
  }
  const slices: Value[] = [];
  const onehot = new Array<number>(kk * kk).fill(0);
  for (let k = 0; k < kk; k++) {
    const idx: number[] = [];
    for (let i = r - 1, rest = k; i >= 0; i--) {
      idx[i] = rest % win.kernel[i]!;
      rest = Math.floor(rest / win.kernel[i]!);
    }
    const starts = idx.map((ki, i) => ki * win.dilations[i]!);
    const ends = starts.map((st, i) => st + win.strides[i]! * (win.outSize[i]! - 1) + 1);
    slices.push(b.unsqueeze(b.slice(xp, starts, ends, spatialAxes, win.strides), [2]));
    // Kernel of input channel k: 1 at offset k (weight [K, 1, kernel…], row-major).
    onehot[k * kk + k] = 1;
  }
  const stacked = slices.length === 1 ? slices[0]! : b.concat(slices, 2);
  const argmax = b.op1('ArgMax', [stacked], { axis: 2, keepdims: 1 });
  const offsets = b.constant(
    makeTensor('int64', [1, 1, kk, ...win.outSize.map(() => 1)], [...Array(kk).keys()]),
    'offsets',
  );
  const mask = b.op1('Equal', [argmax, offsets]);
  const routed = b.op1('Where', [mask, b.unsqueeze(gy, [2]), b.scalar(0, x.dtype)]);
  const geo = transposeGeometry(win);
  const weight = b.constant(makeTensor(x.dtype, [kk, 1, ...win.kernel], onehot), 'onehot_kernel');
  const spread = b.op1('ConvTranspose', [b.reshape(routed, [-1, kk, ...win.outSize]), weight], {
    kernel_shape: win.kernel,
    strides: win.strides,
    dilations: win.dilations,
    pads: geo.pads,
    output_padding: geo.outputPadding,
  });
  return typeof c === 'number'
    ? b.reshape(spread, [-1, c, ...win.inSize])
    : b.op1('Reshape', [spread, b.op1('Shape', [x])]);
}

function scatterGrad(
  ctx: GradContext,
  win: Window,
  x: Value,
  gy: Value,
  a: Partial<MaxPoolAttrs>,
): Value {
  const { b, node } = ctx;
  let indices: Value;
  if (node.outputs[1] && (a.storage_order ?? 0) === 0) {
    indices = ctx.O(1);
  } else {
    indices = b.op(
      'MaxPool',
      [x],
      {
        kernel_shape: win.kernel,
        strides: win.strides,
        dilations: win.dilations,
        pads: win.pads,
        ceil_mode: a.ceil_mode ?? 0,
        storage_order: 0,
      },
      { outputs: 2 },
    )[1]!;
  }
  const shape = b.op1('Shape', [x]);
  const xs = x.shape!;
  const numel = xs.every((d) => typeof d === 'number')
    ? b.ints([xs.reduce((p, d) => p * d, 1)])
    : null;
  const zeros = b.op1('ConstantOfShape', [numel ?? b.unsqueeze(b.op1('Size', [x]), [0])], {
    value: makeTensor(x.dtype, [1], [0]),
  });
  const flat = b.op1('ScatterElements', [zeros, b.reshape(indices, [-1]), b.reshape(gy, [-1])], {
    axis: 0,
    reduction: 'add',
  });
  return b.op1('Reshape', [flat, shape]);
}
