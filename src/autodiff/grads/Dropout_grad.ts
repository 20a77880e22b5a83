import { GradientError } from '../../util/errors.js';
import type { GraphBuilder, Value } from '../../onnx/builder.js';
import { ONNX_DTYPE_CODE } from '../../onnx/dtype.js';
import { type Tensor, toNumbers } from '../../onnx/tensor.js';
import type { GradRule } from '../types.js';

/**
 * The single number held by a constant value (an initializer that is not also a graph
 * input, or a Constant node's tensor), or undefined when it is only known at run time.
 */
function constScalar(b: GraphBuilder, v: Value): number | undefined {
  const { graph } = b;
  let t: Tensor | undefined;
  if (graph.initializers.has(v.name)) {
    if (graph.inputs.some((i) => i.name === v.name)) return undefined;
    t = graph.initializers.get(v.name);
  } else {
    const attr = graph.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === v.name)?.attrs
      .value;
    if (attr?.type === 'tensor') t = attr.value;
  }
  return t && t.data.length === 1 ? toNumbers(t)[0] : undefined;
}

/**
 * Dropout (opset ≥ 12: inputs data, ratio = 0.5, training_mode = false; outputs y and the
 * boolean mask). In inference mode (no or false training_mode, ratio 0, or opset < 12,
 * where ONNX Runtime only runs inference) y = x, so dx = dy. In training mode
 * y = x · mask / (1 − ratio), so dx = dy · mask / (1 − ratio), using the mask output the
 * forward pass drew. A training_mode that is not a constant selects between the two at run
 * time. Training mode needs the node's mask output: the mask cannot be recovered from y.
 */
export const dropoutGrad: GradRule = {
  opType: 'Dropout',
  grad: (ctx) => {
    const { b, node } = ctx;
    const gy = ctx.GO(0)!;
    const training = b.opset >= 12 ? ctx.I(2) : null;
    if (!training) return [gy];
    const trainingConst = constScalar(b, training);
    if (trainingConst === 0) return [gy];
    const ratio = ctx.I(1);
    const ratioConst = ratio ? constScalar(b, ratio) : 0.5;
    if (ratioConst === 0) return [gy];
    if (!node.outputs[1]) {
      throw new GradientError(
        `Dropout node ${node.name} may run in training mode but has no mask output; ` +
          `add output 1 (the mask) so its gradient can be computed`,
      );
    }
    const mask = b.op1('Cast', [ctx.O(1)], { to: ONNX_DTYPE_CODE[gy.dtype] });
    // 1 / (1 − ratio) on the scalar ratio first: one full-size Mul fewer.
    const keep =
      ratioConst !== undefined
        ? b.scalar(1 / (1 - ratioConst), gy.dtype)
        : b.op1('Reciprocal', [
            b.sub(
              b.scalar(1, gy.dtype),
              ratio!.dtype === gy.dtype
                ? ratio!
                : b.op1('Cast', [ratio!], { to: ONNX_DTYPE_CODE[gy.dtype] }),
            ),
          ]);
    const scaled = b.mul(gy, b.mul(mask, keep));
    return [trainingConst === undefined ? b.op1('Where', [training, scaled, gy]) : scaled];
  },
};
