import { performance } from 'node:perf_hooks';
import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';
import type { SessionCache } from '../runtime/session-cache.js';

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
 * Latency of several models on the same inputs, measured in interleaved blocks: each round
 * runs every model `block` times in turn and drops the first run of each block, so that
 * machine-load drift hits all models alike and no model is timed while another session's
 * worker threads are still spinning down.
 * @param models - models to compare (same inputs); ratios are relative to the first
 * @param runs - timed runs per model
 * @param sessions - a cache to take the sessions from (a model given twice is timed on one
 *   session)
 */
export async function compareLatency(
  models: Model[],
  inputs: Record<string, Tensor>,
  opts: { runs?: number; block?: number; threads?: number; sessions?: SessionCache } = {},
): Promise<LatencyComparison> {
  const runs = opts.runs ?? 50;
  const block = Math.max(3, opts.block ?? 6);
  const sessions: Session[] = [];
  const cache = opts.sessions;
  for (const m of models) {
    const o = { threads: opts.threads };
    sessions.push(cache ? await cache.acquire(m, o) : await Session.create(m, o));
  }
  const times: number[][] = models.map(() => []);
  const rounds: number[][] = models.map(() => []);
  try {
    for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(inputs); // warm-up
    while (times[0]!.length < runs) {
      for (let k = 0; k < sessions.length; k++) {
        const t: number[] = [];
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          await sessions[k]!.run(inputs);
          if (i > 0) t.push(performance.now() - t0);
        }
        times[k]!.push(...t);
        rounds[k]!.push(median(t));
      }
    }
  } finally {
    for (const s of sessions) await (cache ? cache.give(s) : s.release());
  }
  return {
    ms: times.map(median),
    ratio: rounds.map((r) => median(r.map((v, i) => v / rounds[0]![i]!))),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}
