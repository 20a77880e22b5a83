import { performance } from 'node:perf_hooks';
import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session } from '../runtime/session.js';

/**
 * Median latency (ms per run) of several models on the same inputs, measured in
 * interleaved blocks: each round runs every model `block` times in turn and drops the
 * first run of each block, so that machine-load drift hits all models alike and no model
 * is timed while another session's worker threads are still spinning down.
 * @param models - models to compare (same inputs)
 * @param runs - timed runs per model
 */
export async function compareLatency(
  models: Model[],
  inputs: Record<string, Tensor>,
  opts: { runs?: number; block?: number; threads?: number } = {},
): Promise<number[]> {
  const runs = opts.runs ?? 50;
  const block = Math.max(2, opts.block ?? 5);
  const sessions = [];
  for (const m of models) sessions.push(await Session.create(m, { threads: opts.threads }));
  for (const s of sessions) await s.run(inputs); // warm-up
  const times: number[][] = models.map(() => []);
  while (times[0]!.length < runs) {
    for (let k = 0; k < sessions.length; k++) {
      for (let i = 0; i < block; i++) {
        const t0 = performance.now();
        await sessions[k]!.run(inputs);
        if (i > 0) times[k]!.push(performance.now() - t0);
      }
    }
  }
  for (const s of sessions) await s.release();
  return times.map((t) => [...t].sort((a, b) => a - b)[t.length >> 1]!);
}
