// Graph feeds taken apart along the batch: the passes over large models (statistics,
// verification) run a few images at a time, so that the values they fetch per run stay
// bounded whatever batch the caller fed.
import type { Tensor } from '../onnx/tensor.js';

/** The batch size of a set of feeds: the leading dim of the first input (1 for a scalar). */
export function feedBatchSize(inputs: Record<string, Tensor>): number {
  const first = Object.values(inputs)[0];
  return first && first.dims.length > 0 ? first.dims[0]! : 1;
}

/**
 * Images start..start+count of every input whose leading dim is the batch (`total`);
 * other inputs are passed whole. The slices are views, not copies.
 */
export function sliceFeeds(
  inputs: Record<string, Tensor>,
  total: number,
  start: number,
  count: number,
): Record<string, Tensor> {
  if (start === 0 && count === total) return inputs;
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) {
    if (t.dims[0] !== total) {
      out[k] = t;
      continue;
    }
    const per = t.data.length / total;
    const data = t.data.subarray(start * per, (start + count) * per);
    out[k] = { ...t, dims: [count, ...t.dims.slice(1)], data };
  }
  return out;
}
