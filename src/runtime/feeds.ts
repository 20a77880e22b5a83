// Graph feeds taken apart along the batch: the passes over large models (statistics,
// verification) run a few images at a time, so that the values they fetch per run stay
// bounded whatever batch the caller fed.
import type { Tensor } from '../onnx/tensor.js';

/** The batch size of a set of feeds: the leading dim of the first input (1 for a scalar). */
function feedBatchSize(inputs: Record<string, Tensor>): number {
  const first = Object.values(inputs)[0];
  return first && first.dims.length > 0 ? first.dims[0]! : 1;
}

/**
 * Images start..start+count of every input whose leading dim is the batch (`total`);
 * other inputs are passed whole. The slices are views, not copies.
 */
function sliceFeeds(
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

/**
 * Runs batches of feeds a few images at a time: the first image alone, then as many per
 * run as keep what a run reports (the bytes it made or held) near `budget`. The run size
 * carries over from one batch to the next.
 * @example
 * const chunks = new FeedChunks(256e6);
 * for (const feeds of batches) await chunks.forEach(feeds, async (f) => bytesOf(await s.run(f)));
 */
export class FeedChunks {
  private size = 1;

  /** @param budget - bytes one run should report, about */
  constructor(readonly budget: number) {}

  /**
   * Runs `run` on consecutive slices of `feeds` along the batch.
   * @returns the batch size of `feeds`
   */
  async forEach(
    feeds: Record<string, Tensor>,
    run: (slice: Record<string, Tensor>) => Promise<number>,
  ): Promise<number> {
    const total = feedBatchSize(feeds);
    for (let start = 0; start < total;) {
      const count = Math.min(this.size, total - start);
      const bytes = await run(sliceFeeds(feeds, total, start, count));
      start += count;
      this.size = Math.max(1, Math.floor((this.budget * count) / Math.max(1, bytes)));
    }
    return total;
  }
}
