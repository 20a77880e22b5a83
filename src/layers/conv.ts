import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';
import { batchNorm } from './norm.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  /** 'torch': nn.Conv2d default U(±1/sqrt(fan_in)); 'kaiming-out': torchvision ResNet (normal, std sqrt(2 / fan_out)). */
  init?: 'torch' | 'kaiming-out';
}

/** A 2-D convolution with PyTorch's layout (`weight` [out, in/groups, k, k], `bias` [out]). */
export function conv2d(
  ctx: LayerContext,
  x: Value,
  name: string,
  inC: number,
  outC: number,
  k: number,
  opts: Conv2dOptions = {},
): Value {
  const { b } = ctx;
  const groups = opts.groups ?? 1;
  const s = opts.stride ?? 1;
  const p = opts.padding ?? 0;
  const d = opts.dilation ?? 1;
  const fanIn = (inC / groups) * k * k;
  const fanOut = (outC / groups) * k * k;
  return b.scope(name, () => {
    const w = b.param(
      'weight',
      [outC, inC / groups, k, k],
      opts.init === 'kaiming-out'
        ? { kind: 'normal', std: Math.sqrt(2 / fanOut) }
        : { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) },
    );
    const bias =
      opts.bias === false
        ? null
        : b.param('bias', [outC], { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) });
    return b.conv(x, w, bias, {
      strides: [s, s],
      pads: [p, p, p, p],
      dilations: [d, d],
      group: groups,
    });
  });
}

/** conv (no bias) -> batch norm, torchvision's `convN` + `bnN` pair. */
export function convBn(
  ctx: LayerContext,
  x: Value,
  convName: string,
  bnName: string,
  inC: number,
  outC: number,
  k: number,
  stride = 1,
): Value {
  const y = conv2d(ctx, x, convName, inC, outC, k, {
    stride,
    padding: (k - 1) >> 1,
    bias: false,
    init: 'kaiming-out',
  });
  return batchNorm(ctx, y, bnName, outC);
}
