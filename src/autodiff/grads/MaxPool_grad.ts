import { GradientError } from '../../errors.js';
import type { Value } from '../../onnx/builder.js';
import { makeTensor } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';
import { resolveWindow } from './window.js';

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
 * The arg-max comes from MaxPool's second output `Indices` (flat row-major positions in
 * x, padding excluded). A rule cannot change the forward node, so when the forward node
 * does not output row-major indices, the backward graph runs a second MaxPool with the
 * same attributes that does (one extra pooling pass; no re-run of anything upstream).
 * dx = ScatterElements(zeros(numel x), indices, dy, reduction 'add') on the flattened
 * tensors, reshaped to x's shape.
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
    const storageOrder = a.storage_order ?? 0;
    let indices: Value;
    if (node.outputs[1] && storageOrder === 0) {
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
      ? b.ints([(xs as number[]).reduce((p, d) => p * d, 1)])
      : null;
    const zeros = b.op1('ConstantOfShape', [numel ?? b.unsqueeze(b.op1('Size', [x]), [0])], {
      value: makeTensor(x.dtype, [1], [0]),
    });
    const flat = b.op1('ScatterElements', [zeros, b.reshape(indices, [-1]), b.reshape(gy, [-1])], {
      axis: 0,
      reduction: 'add',
    });
    return [b.op1('Reshape', [flat, shape])];
  },
};
