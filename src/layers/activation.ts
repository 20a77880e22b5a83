import type { GraphBuilder, Value } from '../onnx/builder.js';

/** SiLU (swish), x · σ(x), PyTorch's nn.SiLU: built from Sigmoid and Mul. */
export function silu(b: GraphBuilder, x: Value): Value {
  return b.mul(x, b.sigmoid(x));
}
