import type { Value } from '../onnx/builder.js';
import type { LayerContext } from './context.js';

/**
 * Nearest-neighbour upsampling of an NCHW tensor by a whole factor (PyTorch's
 * `F.interpolate(x, scale_factor=f, mode='nearest')`): one Resize node whose `sizes` are
 * [N, C] read from the input at run time and the static [f·H, f·W], so the batch stays
 * symbolic and shapes stay inferred.
 * @param ctx - layer context
 * @param x - input [N, C, H, W] with static H and W
 * @param factor - whole upsampling factor (default 2)
 */
export function upsampleNearest(ctx: LayerContext, x: Value, factor = 2): Value {
  const { b } = ctx;
  const shape = x.shape;
  if (
    !shape ||
    shape.length !== 4 ||
    typeof shape[2] !== 'number' ||
    typeof shape[3] !== 'number'
  ) {
    throw new RangeError('upsample: needs [N, C, H, W] with static H and W');
  }
  if (!Number.isInteger(factor) || factor < 1) {
    throw new RangeError(`upsample: factor must be a whole number >= 1, got ${factor}`);
  }
  const nc = b.slice(b.op1('Shape', [x]), [0], [2], [0]);
  const sizes = b.concat([nc, b.ints([shape[2] * factor, shape[3] * factor])], 0);
  return b.op1('Resize', [x, null, null, sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}
