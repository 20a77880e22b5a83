import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';

/** LayerNorm over the last axis with `weight` (ones) and `bias` (zeros) under `name`. */
export function layerNorm(
  ctx: LayerContext,
  x: Value,
  name: string,
  dim: number,
  eps = 1e-6,
): Value {
  const { b } = ctx;
  return b.scope(name, () => {
    const w = b.param('weight', [dim], { kind: 'ones' });
    const bias = b.param('bias', [dim], { kind: 'zeros' });
    return b.layerNorm(x, w, bias, eps);
  });
}

/**
 * BatchNorm over axis 1 (torchvision names: weight, bias, running_mean, running_var).
 * In training mode the batch statistics normalise and the updated running statistics
 * are recorded in `ctx.bufferUpdates`; PyTorch's momentum 0.1 is ONNX momentum 0.9.
 * @param opts.affine - false freezes nothing but omits nothing either: weight/bias still
 *   exist; `frozenBias` marks the bias as a buffer (TransReID's BNNeck).
 */
export function batchNorm(
  ctx: LayerContext,
  x: Value,
  name: string,
  channels: number,
  opts: { eps?: number; momentum?: number; frozenBias?: boolean } = {},
): Value {
  const { b } = ctx;
  const eps = opts.eps ?? 1e-5;
  const momentum = 1 - (opts.momentum ?? 0.1);
  return b.scope(name, () => {
    const w = b.param('weight', [channels], { kind: 'ones' });
    const bias = b.param('bias', [channels], { kind: 'zeros' }, { buffer: opts.frozenBias });
    const rm = b.param('running_mean', [channels], { kind: 'zeros' }, { buffer: true });
    const rv = b.param('running_var', [channels], { kind: 'ones' }, { buffer: true });
    if (ctx.mode === 'eval')
      return b.op1('BatchNormalization', [x, w, bias, rm, rv], { epsilon: eps });
    const [y, newMean, newVar] = b.op(
      'BatchNormalization',
      [x, w, bias, rm, rv],
      { epsilon: eps, momentum, training_mode: 1 },
      { outputs: 3 },
    );
    ctx.bufferUpdates.set(rm.name, newMean!);
    ctx.bufferUpdates.set(rv.name, newVar!);
    return y!;
  });
}
