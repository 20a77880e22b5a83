import { float32 } from '../onnx/tensor.js';
import type { GraphBuilder, Value } from '../onnx/builder.js';

/**
 * The sinusoidal timestep embedding of DDPM (Ho et al., after the Transformer's position
 * encoding): for t [N] and an even `dim` with half = dim / 2,
 * emb[n] = [sin(t_n f_0), …, sin(t_n f_{half−1}), cos(t_n f_0), …, cos(t_n f_{half−1})],
 * f_i = exp(−ln(maxPeriod) · i / (half − 1)). Frequencies are a constant; Sin and Cos run in
 * the graph, so the model takes the timestep itself as input.
 * @param b - builder
 * @param t - timesteps [N] (float)
 * @param dim - embedding width (even, >= 4)
 * @param maxPeriod - longest period (default 10000)
 */
export function sinusoidalEmbedding(
  b: GraphBuilder,
  t: Value,
  dim: number,
  maxPeriod = 10000,
): Value {
  if (!Number.isInteger(dim) || dim < 4 || dim % 2 !== 0) {
    throw new RangeError(`time embedding: dim must be an even integer >= 4, got ${dim}`);
  }
  const half = dim / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(maxPeriod) * i) / (half - 1));
  const args = b.mul(b.unsqueeze(t, [1]), b.constant(float32([1, half], freqs), 'time_freqs'));
  return b.concat([b.op1('Sin', [args]), b.op1('Cos', [args])], 1);
}
