import { GradientError } from '../../util/errors.js';
import type { GraphBuilder, Value } from '../../onnx/builder.js';
import type { GradRule } from '../types.js';
import { effectiveKernel, resolveWindow, transposeGeometry, type Window } from './window.js';

interface ConvAttrs {
  auto_pad: string;
  dilations: number[];
  group: number;
  kernel_shape: number[];
  pads: number[];
  strides: number[];
}

/**
 * y = conv(x, w) + b for any number of spatial axes (1-D, 2-D, 3-D), with strides, pads,
 * dilations and groups (auto_pad NOTSET or VALID).
 *
 * - dx[n, c, i] = Σ_{o, k, p : s·p + d·k − pad = i} dy[n, o, p] · w[o, c, k]: a transposed
 *   convolution of dy with the same weight, strides, pads, dilations and group;
 *   output_padding restores the input positions the forward's floor dropped, so dx has
 *   x's shape exactly. With unit strides it is also an ordinary convolution of dy with the
 *   weight flipped in space and its channel axes swapped (per group), padded by
 *   eff − 1 − pad; that form is used when it applies, because ONNX Runtime's direct
 *   convolution is markedly faster than its ConvTranspose.
 * - dw[o, c, k] = Σ_{n, p} dy[n, o, p] · x_pad[n, c, s·p + d·k], by columns: one strided
 *   Slice of the zero-padded x per kernel offset k gives x_k[n, c, p], and one matrix
 *   product with dy per offset contracts it over images and positions (see weightGrad
 *   for the two layouts). (A Conv that correlates x with
 *   dy has a kernel as large as the image, for which ONNX Runtime's Conv is about three
 *   times slower; materialising the whole im2col matrix costs an extra copy.)
 * - db = Σ dy over the batch and spatial axes.
 */
export const convGrad: GradRule = {
  opType: 'Conv',
  grad: (ctx) => {
    const { b, node } = ctx;
    const x = ctx.I(0)!;
    const w = ctx.I(1)!;
    const gy = ctx.GO(0)!;
    const a = ctx.attrs<ConvAttrs>();
    const ws = w.shape;
    if (!ws?.every((d) => typeof d === 'number')) {
      throw new GradientError(
        `Conv node '${node.name}': its gradient needs a weight of static shape, got [${ws ?? '?'}]`,
      );
    }
    const wdims = ws;
    const kernel = a.kernel_shape?.length ? a.kernel_shape : wdims.slice(2);
    const win = resolveWindow(node, a, kernel, x, ctx.O(0));
    const group = a.group ?? 1;
    const dx = ctx.needsGrad(0) ? inputGrad(b, win, w, wdims, gy, group) : null;
    const dw = ctx.needsGrad(1) ? weightGrad(b, win, x, wdims, gy, group) : null;
    const spatialAxes = Array.from({ length: win.rank }, (_, i) => i + 2);
    const db = ctx.needsGrad(2) && ctx.I(2) ? b.reduceSum(gy, [0, ...spatialAxes], false) : null;
    return [dx, dw, db];
  },
};

function inputGrad(
  b: GraphBuilder,
  win: Window,
  w: Value,
  wdims: number[],
  gy: Value,
  group: number,
): Value {
  const r = win.rank;
  const spatialAxes = Array.from({ length: r }, (_, i) => i + 2);
  const eff = win.kernel.map((_, i) => effectiveKernel(win, i));
  const flipPads = [
    ...win.pads.slice(0, r).map((p, i) => eff[i]! - 1 - p),
    ...win.pads.slice(r).map((p, i) => eff[i]! - 1 - p),
  ];
  if (win.strides.every((s) => s === 1) && flipPads.every((p) => p >= 0)) {
    const [cout, cg] = [wdims[0]!, wdims[1]!];
    let wt: Value;
    if (group === 1) {
      wt = b.transpose(w, [1, 0, ...spatialAxes]);
    } else {
      const og = cout / group;
      const g5 = b.reshape(w, [group, og, cg, ...win.kernel]);
      wt = b.reshape(b.transpose(g5, [0, 2, 1, ...spatialAxes.map((i) => i + 1)]), [
        group * cg,
        og,
        ...win.kernel,
      ]);
    }
    // Reverse every spatial axis: start at K−1, step −1, end before index 0.
    const flipped = b.slice(
      wt,
      win.kernel.map((k) => k - 1),
      win.kernel.map((k) => -k - 1),
      spatialAxes,
      win.kernel.map(() => -1),
    );
    return b.op1('Conv', [gy, flipped], { dilations: win.dilations, pads: flipPads, group });
  }
  const geo = transposeGeometry(win);
  return b.op1('ConvTranspose', [gy, w], {
    kernel_shape: win.kernel,
    strides: win.strides,
    dilations: win.dilations,
    pads: geo.pads,
    output_padding: geo.outputPadding,
    group,
  });
}

/** Below this many output positions per image, dw folds the batch into one GEMM per offset. */
const PER_IMAGE_MIN_POSITIONS = 512;

function weightGrad(
  b: GraphBuilder,
  win: Window,
  x: Value,
  wdims: number[],
  gy: Value,
  group: number,
): Value {
  const r = win.rank;
  const [cout, cg] = [wdims[0]!, wdims[1]!];
  const og = cout / group;
  const kk = win.kernel.reduce((p, k) => p * k, 1);
  const npos = win.outSize.reduce((p, k) => p * k, 1);
  const spatialAxes = Array.from({ length: r }, (_, i) => i + 2);
  // Two layouts, chosen by measurement on ONNX Runtime's CPU kernels. Many positions per
  // image: x stays [N, C, S] and each offset is a MatMul batched over images and groups,
  // x_k [N, G, Cg, P] @ dyᵀ [N, G, P, Og], summed over the batch at the end. Few positions
  // (small late-stage feature maps): x and dy are transposed once to put the batch inside
  // the contraction, x_k [G, Cg, N·P] @ dyᵀ [G, N·P, Og], one large GEMM per offset.
  const perImage = npos >= PER_IMAGE_MIN_POSITIONS;
  const src = perImage ? x : b.transpose(x, [1, 0, ...spatialAxes]);
  let xp = src;
  if (win.pads.some((p) => p !== 0)) {
    xp = b.op1('Pad', [src, b.ints([0, 0, ...win.pads.slice(0, r), 0, 0, ...win.pads.slice(r)])]);
  }
  const gyT = perImage
    ? b.transpose(b.reshape(gy, [-1, group, og, npos]), [0, 1, 3, 2])
    : b.reshape(b.transpose(b.reshape(gy, [-1, group, og, npos]), [1, 2, 0, 3]), [group, og, -1]);
  const parts: Value[] = [];
  for (let k = 0; k < kk; k++) {
    const idx: number[] = [];
    for (let i = r - 1, rest = k; i >= 0; i--) {
      idx[i] = rest % win.kernel[i]!;
      rest = Math.floor(rest / win.kernel[i]!);
    }
    const starts = idx.map((ki, i) => ki * win.dilations[i]!);
    const ends = starts.map((st, i) => st + win.strides[i]! * (win.outSize[i]! - 1) + 1);
    const whole =
      xp === src &&
      starts.every((st, i) => st === 0 && ends[i] === win.inSize[i] && win.strides[i] === 1);
    const xk = whole ? src : b.slice(xp, starts, ends, spatialAxes, win.strides);
    if (perImage) {
      parts.push(b.unsqueeze(b.matmul(b.reshape(xk, [-1, group, cg, npos]), gyT), [2]));
    } else if (group === 1) {
      parts.push(
        b.unsqueeze(
          b.gemm(b.reshape(xk, [cg, -1]), b.reshape(gyT, [og, -1]), null, { transB: 1 }),
          [0, 1],
        ),
      );
    } else {
      parts.push(
        b.unsqueeze(b.matmul(b.reshape(xk, [group, cg, -1]), b.transpose(gyT, [0, 2, 1])), [1]),
      );
    }
  }
  // Per image: [N, G, K, Cg, Og] summed over the batch; folded: [G, K, Cg, Og] already.
  // Then [G, K…, Cg, Og] → [G, Og, Cg, K…] → [O, Cg, K…].
  const stacked = parts.length === 1 ? parts[0]! : b.concat(parts, perImage ? 2 : 1);
  const total = perImage ? b.reduceSum(stacked, [0], false) : stacked;
  const summed = b.reshape(total, [group, ...win.kernel, cg, og]);
  const perm = [0, r + 2, r + 1, ...Array.from({ length: r }, (_, i) => i + 1)];
  return b.reshape(b.transpose(summed, perm), wdims);
}
