import { performance } from 'node:perf_hooks';
import type { Model } from '../onnx/ir.js';
import { encodeModel } from '../onnx/serialize.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';

export interface LatencyComparison {
  /** Median latency per model (ms per run). */
  ms: number[];
  /**
   * Latency of each model relative to the first, as the median over rounds of the ratio
   * of the two models' block medians in that round (a paired estimate: drift in machine
   * load between rounds cancels).
   */
  ratio: number[];
}

/**
 * Latency of several models on the same inputs, measured in rounds. In each round every
 * model gets a fresh session, a short warm-up and one timed block, and its session is
 * released before the next model's is created; the order rotates from round to round.
 *
 * Why: an idle ONNX Runtime session keeps its own worker threads, which spin for a while
 * after each run. With several sessions alive at once on a small machine they compete for
 * the cores, and a session's placement (threads, memory) can make it persistently faster
 * or slower than an identical one: measured here at batch 1 with two threads, two
 * sessions of the *same* model held side by side differed by up to 13%. One session at a
 * time, fresh each round, with the order rotated, brings identical models to within about
 * 1% of each other.
 * @param models - models to compare (same inputs); ratios are relative to the first
 * @param inputs - one feed for every model
 * @param opts.runs - timed runs per model (at least)
 * @param opts.block - timed runs per model and round (default: runs / 20, at least 5)
 */
export async function compareLatency(
  models: Model[],
  inputs: Record<string, Tensor>,
  opts: { runs?: number; block?: number; threads?: number } = {},
): Promise<LatencyComparison> {
  const runs = opts.runs ?? 50;
  // About 20 rounds whatever the run count: enough pairs for the median ratio, without a
  // session start-up for every few runs of a fast model.
  const block = Math.max(3, opts.block ?? Math.max(5, Math.round(runs / 20)));
  const bytes = models.map(encodeModel);
  const times: number[][] = models.map(() => []);
  const rounds: number[][] = models.map(() => []);
  for (let round = 0; times[0]!.length < runs; round++) {
    for (let j = 0; j < models.length; j++) {
      const k = (j + round) % models.length;
      const s = await Session.fromEncoded(models[k]!, bytes[k]!, { threads: opts.threads });
      try {
        for (let i = 0; i < 3; i++) await s.run(inputs); // warm-up
        const t: number[] = [];
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          await s.run(inputs);
          t.push(performance.now() - t0);
        }
        times[k]!.push(...t);
        rounds[k]!.push(median(t));
      } finally {
        await s.release();
      }
    }
  }
  return {
    ms: times.map(median),
    ratio: rounds.map((r) => median(r.map((v, i) => v / rounds[0]![i]!))),
  };
}

/**
 * Timed runs for a batch size, given the runs for large batches: a batch under 8 runs far
 * faster, so it gets 10x as many for a comparable time and precision.
 */
export function latencyRunsFor(batch: number, runs: number): number {
  return batch < 8 ? 10 * runs : runs;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}
