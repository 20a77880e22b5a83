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
 * @param opts.warmup - untimed runs after each session start (default 3)
 */
export async function compareLatency(
  models: Model[],
  inputs: Record<string, Tensor>,
  opts: { runs?: number; block?: number; threads?: number; warmup?: number } = {},
): Promise<LatencyComparison> {
  const runs = opts.runs ?? 50;
  // About 20 rounds whatever the run count: enough pairs for the median ratio, without a
  // session start-up for every few runs of a fast model.
  const block = Math.max(1, opts.block ?? defaultBlock(runs));
  const warmup = opts.warmup ?? 3;
  const bytes = models.map(encodeModel);
  const times: number[][] = models.map(() => []);
  const rounds: number[][] = models.map(() => []);
  for (let round = 0; times[0]!.length < runs; round++) {
    for (let j = 0; j < models.length; j++) {
      const k = (j + round) % models.length;
      const s = await Session.fromEncoded(models[k]!, bytes[k]!, { threads: opts.threads });
      try {
        for (let i = 0; i < warmup; i++) await s.run(inputs);
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

/** Timed runs per model and round when not given: about 20 rounds, at least 5 runs each. */
function defaultBlock(runs: number): number {
  return Math.max(5, Math.round(runs / 20));
}

/** What one run of a model costs, measured by {@link probeLatency}. */
export interface LatencyProbe {
  /** Creating a session (ms). */
  sessionMs: number;
  /** One run after a warm-up run (ms). */
  runMs: number;
}

/** How a latency comparison is run: rounds of `block` timed runs after `warmup` runs. */
export interface LatencyPlan {
  rounds: number;
  block: number;
  warmup: number;
  /** Expected wall time of the comparison (ms). */
  expectedMs: number;
}

/**
 * Times one model once: a session start, a warm-up run, one timed run. What the plan of a
 * budgeted comparison ({@link planLatency}) starts from.
 * @param model - the model (the comparison's first)
 * @param inputs - the feeds
 * @param threads - intra-op threads
 */
export async function probeLatency(
  model: Model,
  inputs: Record<string, Tensor>,
  threads?: number,
): Promise<LatencyProbe> {
  const t0 = performance.now();
  const s = await Session.create(model, { threads });
  const t1 = performance.now();
  try {
    await s.run(inputs);
    const t2 = performance.now();
    await s.run(inputs);
    return { sessionMs: t1 - t0, runMs: performance.now() - t2 };
  } finally {
    await s.release();
  }
}

/**
 * Run counts for comparing `models` models within `budgetMs`, from a probe: the
 * requested `runs` (as {@link compareLatency} would run them: about 20 rounds) when they
 * fit; else fewer rounds (at least 3, for a median of paired ratios), then a smaller
 * block and a single warm-up run, then one round; null when not even one round of one
 * timed run per model fits. A round costs, per model, a session start plus the warm-up
 * and timed runs.
 * @param probe - session start and run time of one model
 * @param opts - runs wanted, budget, number of models
 * @example planLatency({ sessionMs: 900, runMs: 4000 }, { runs: 30, budgetMs: 30000, models: 2 })
 */
export function planLatency(
  probe: LatencyProbe,
  opts: { runs: number; budgetMs: number; models: number },
): LatencyPlan | null {
  const { sessionMs, runMs } = probe;
  const { runs, budgetMs, models } = opts;
  const cost = (rounds: number, block: number, warmup: number) =>
    rounds * models * (sessionMs + (warmup + block) * runMs);
  const plan = (rounds: number, block: number, warmup: number): LatencyPlan => ({
    rounds,
    block,
    warmup,
    expectedMs: cost(rounds, block, warmup),
  });
  const block = defaultBlock(runs);
  const rounds = Math.ceil(runs / block);
  if (cost(rounds, block, 3) <= budgetMs) return plan(rounds, block, 3);
  const fitRounds = Math.floor(budgetMs / cost(1, block, 3));
  if (fitRounds >= 3) return plan(Math.min(rounds, fitRounds), block, 3);
  // Three rounds with one warm-up run: as many timed runs per round as fit.
  for (const r of [3, 1]) {
    const b = Math.min(block, Math.floor((budgetMs / (r * models) - sessionMs) / runMs) - 1);
    if (b >= 1) return plan(r, b, 1);
  }
  return null;
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
