import type { Value } from '../onnx/builder.js';
import { float32 } from '../onnx/tensor.js';
import type { LayerContext } from './context.js';

/**
 * Nearest-neighbour upsampling of an NCHW tensor by a whole factor (PyTorch's
 * `F.interpolate(x, scale_factor=f, mode='nearest')`, as torch.onnx exports it): one
 * Resize node with constant scales [1, 1, f, f], so the batch stays symbolic and the
 * output shape is inferred exactly.
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
  const scales = b.constant(float32([4], [1, 1, factor, factor]), 'upsample_scales');
  return b.op1('Resize', [x, null, scales], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}
