import { countFlops } from '../eval/flops.js';
import { performance } from 'node:perf_hooks';
import {
  compareLatency,
  type LatencyPlan,
  latencyRunsFor,
  planLatency,
  probeLatency,
} from '../eval/latency.js';
import { type Model, producers } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session, withExtraOutputs } from '../runtime/session.js';
import { FeedChunks } from '../runtime/feeds.js';
import { copiedFrom } from './fuse.js';
import { buildDenoisedModel } from './graph.js';
import type { ConversionPlan } from './plan.js';
import { traceRoute, valueAlong } from './routes.js';

/**
 * The initializers `fused` adds to `original`: copies fusion made so that a layer owns its
 * tensor (`<value>::copy`), each of the dtype and shape of the value it replaces. Other
 * added names are not copies.
 */
export function initializerCopies(original: Model, fused: Model): Map<string, string> {
  const ga = original.graph;
  const prod = producers(ga);
  const out = new Map<string, string>();
  for (const [name, t] of fused.graph.initializers) {
    if (ga.initializers.has(name)) continue;
    const of = copiedFrom(name);
    if (of === undefined) continue;
    const traced = traceRoute(ga, of, prod, true);
    if (!('route' in traced)) continue;
    const v = valueAlong(ga, traced.route, traced.route.path.length);
    if (v.dtype === t.dtype && v.dims.join() === t.dims.join()) out.set(name, of);
  }
  return out;
}

/**
 * Differences in structure between two models (empty when the topology is identical):
 * the same nodes (names, ops, attributes) in the same order, reading and writing the same
 * values, the same initializer names, dtypes and shapes, the same graph inputs and
 * outputs. The copies fusion adds for layers whose tensors were shared
 * ({@link initializerCopies}) are allowed: an input that read a value may read its copy.
 */
export function compareTopology(a: Model, b: Model): string[] {
  const diffs: string[] = [];
  const ga = a.graph;
  const gb = b.graph;
  const copies = initializerCopies(a, b);
  const sameInput = (x: string, y: string) => x === y || copies.get(y) === x;
  if (ga.nodes.length !== gb.nodes.length)
    diffs.push(`node count ${ga.nodes.length} vs ${gb.nodes.length}`);
  const n = Math.min(ga.nodes.length, gb.nodes.length);
  for (let i = 0; i < n && diffs.length < 20; i++) {
    const x = ga.nodes[i]!;
    const y = gb.nodes[i]!;
    if (x.opType !== y.opType || x.name !== y.name)
      diffs.push(`node #${i}: ${x.name} (${x.opType}) vs ${y.name} (${y.opType})`);
    else if (
      x.inputs.length !== y.inputs.length ||
      x.inputs.some((v, k) => !sameInput(v, y.inputs[k]!)) ||
      x.outputs.join('|') !== y.outputs.join('|')
    ) {
      diffs.push(`node #${i} ${x.name}: inputs/outputs differ`);
    } else if (
      JSON.stringify(Object.keys(x.attrs).sort()) !== JSON.stringify(Object.keys(y.attrs).sort())
    ) {
      diffs.push(`node #${i} ${x.name}: attributes differ`);
    }
  }
  const ia = [...ga.initializers.entries()].map(([k, t]) => `${k}:${t.dtype}[${t.dims}]`).sort();
  const ib = [...gb.initializers.entries()]
    .filter(([k]) => !copies.has(k))
    .map(([k, t]) => `${k}:${t.dtype}[${t.dims}]`)
    .sort();
  if (ia.join('\n') !== ib.join('\n')) diffs.push('initializer names, dtypes or shapes differ');
  const io = (g: typeof ga) =>
    JSON.stringify([g.inputs.map((v) => [v.name, v.dtype, v.shape]), g.outputs.map((v) => v.name)]);
  if (io(ga) !== io(gb)) diffs.push('graph inputs or outputs differ');
  return diffs;
}

export interface ErrorStat {
  name: string;
  maxAbs: number;
  /** max |a − b| / max |a| (relative to the reference tensor's scale). */
  maxRel: number;
}

/** max |ref − got| and max |ref| (mergeable over batches). */
function errorParts(ref: Tensor, got: Tensor): { maxAbs: number; scale: number } {
  const a = ref.data as Float32Array;
  const c = got.data as Float32Array;
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - c[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return { maxAbs, scale };
}

export interface LatencyStat {
  batch: number;
  originalMs: number;
  fusedMs: number;
  /** fused / original: median over rounds of paired block-median ratios. */
  ratio: number;
  /** Timed runs per model, and the rounds they were spread over (chosen to fit the budget). */
  runs: number;
  rounds: number;
}

export interface VerifyReport {
  ok: boolean;
  tolerance: number;
  /** `copies`: initializers fusion added (copy name → the value it replaced for one layer). */
  topology: { identical: boolean; differences: string[]; copies: Record<string, string> };
  flops: { original: number; fused: number };
  outputs: ErrorStat[];
  layers: ErrorStat[];
  latency: LatencyStat[];
  /** Batch sizes whose latency was not measured, and why (one run over the time budget). */
  latencySkipped: { batch: number; reason: string }[];
  failures: string[];
}

export interface VerifyOptions {
  original: Model;
  fused: Model;
  plan: ConversionPlan;
  denoisers: Map<string, Tensor>;
  /** Real inputs (graph input name -> tensor), e.g. a batch of test images. */
  inputs: Record<string, Tensor>;
  /** Largest accepted relative error (default 1e-4). */
  tolerance?: number;
  /** Batch sizes for latency (default [1, 64]); empty to skip. */
  latencyBatches?: number[];
  /** Timed runs per model at each batch size of 8 or more (default 30); smaller batches get 10x as many. */
  latencyRuns?: number;
  /**
   * Wall-time budget of all latency measurements in ms (default 30,000), probe runs
   * included: run counts are chosen from a timed probe run of the original model so that
   * the measurement fits, whatever the model's size (see planLatency).
   */
  latencyBudgetMs?: number;
  threads?: number;
  /**
   * About how many bytes of compared outputs one run may return (default 128 MB): the
   * inputs are run a few images at a time, so memory stays bounded on large models. Each
   * run's outputs are held about four times over (both models', each computed by ONNX
   * Runtime and copied out): a ViT-B's verification peaked 0.7 GB lower at 128 MB than at
   * 256 MB, and ran no slower.
   */
  chunkBytes?: number;
  /** Makes a batch of `n` inputs for latency runs. */
  makeInputs?: (n: number) => Record<string, Tensor>;
}

/**
 * Checks a fused model against the trained unfused one run with deterministic denoising
 * steps: outputs and every selected layer's output agree within the tolerance, the
 * topology and FLOPs equal the original's, and latency is measured for both models
 * interleaved in one run (median of many).
 */
export async function verifyFusion(opts: VerifyOptions): Promise<VerifyReport> {
  const tolerance = opts.tolerance ?? 1e-4;
  const failures: string[] = [];
  const differences = compareTopology(opts.original, opts.fused);
  if (differences.length) failures.push(`topology differs: ${differences.join('; ')}`);
  const flops = { original: countFlops(opts.original).total, fused: countFlops(opts.fused).total };
  if (flops.original !== flops.fused)
    failures.push(`FLOPs differ: ${flops.original} vs ${flops.fused}`);

  const denoised = buildDenoisedModel(opts.original, opts.plan, opts.denoisers);
  const layerNames = opts.plan.layers.map((p) => p.layer.name);
  const refNames = layerNames.map((l) => denoised.layerOutputs.get(l)!);
  const fusedNames = opts.plan.layers.map((p) => p.layer.output);
  const outNames = opts.original.graph.outputs.map((o) => o.name);
  // Both models run on the same images, a few at a time: the outputs of every fused layer
  // of a large model (ViT-B: 2 GB at batch 32, per model) need not all be held at once.
  const ref = await Session.create(withExtraOutputs(denoised.model, refNames), {
    threads: opts.threads,
    source: 'denoised',
  });
  const fus = await Session.create(withExtraOutputs(opts.fused, fusedNames), {
    threads: opts.threads,
    source: 'fused',
  });
  const names = [
    ...outNames.map((n) => [n, n, n]),
    ...layerNames.map((l, i) => [l, refNames[i]!, fusedNames[i]!]),
  ];
  const acc = new Map(names.map(([n]) => [n!, { maxAbs: 0, scale: 0 }]));
  try {
    // After the first image: as many images per run as keep the outputs near 128 MB.
    await new FeedChunks(opts.chunkBytes ?? 128e6).forEach(opts.inputs, async (feeds) => {
      const r = await ref.run(feeds);
      const f = await fus.run(feeds);
      let bytes = 0;
      for (const [n, rn, fn] of names) {
        const e = errorParts(r[rn!]!, f[fn!]!);
        const a = acc.get(n!)!;
        a.maxAbs = Math.max(a.maxAbs, e.maxAbs);
        a.scale = Math.max(a.scale, e.scale);
        bytes += r[rn!]!.data.byteLength;
      }
      return bytes;
    });
  } finally {
    await ref.release();
    await fus.release();
  }
  const stat = (n: string): ErrorStat => {
    const a = acc.get(n)!;
    return { name: n, maxAbs: a.maxAbs, maxRel: a.maxAbs / Math.max(a.scale, 1e-30) };
  };
  const outputs = outNames.map(stat);
  const layers = layerNames.map(stat);
  for (const e of [...outputs, ...layers]) {
    if (!(e.maxRel <= tolerance))
      failures.push(`${e.name}: relative error ${e.maxRel.toExponential(2)} > ${tolerance}`);
  }

  const latency: LatencyStat[] = [];
  const latencySkipped: VerifyReport['latencySkipped'] = [];
  if (opts.makeInputs) {
    const batches = opts.latencyBatches ?? [1, 64];
    const deadline = performance.now() + (opts.latencyBudgetMs ?? 30_000);
    for (const [i, batch] of batches.entries()) {
      // Each batch size gets an equal share of what is left of the budget.
      const share = (deadline - performance.now()) / (batches.length - i);
      const inputs = opts.makeInputs(batch);
      const probe = await probeLatency(opts.original, inputs, opts.threads);
      const left = share - (probe.sessionMs + 2 * probe.runMs);
      const runs = latencyRunsFor(batch, opts.latencyRuns ?? 30);
      const plan = planLatency(probe, { runs, budgetMs: left, models: 2 });
      if (!plan) {
        latencySkipped.push({
          batch,
          reason: `one run takes ${(probe.runMs / 1000).toFixed(1)} s: no paired measurement fits the ${(share / 1000).toFixed(0)} s left of the latency budget`,
        });
        continue;
      }
      latency.push(
        await measureLatency(opts.original, opts.fused, inputs, batch, plan, opts.threads),
      );
    }
  }
  return {
    ok: failures.length === 0,
    tolerance,
    topology: {
      identical: differences.length === 0,
      differences,
      copies: Object.fromEntries(initializerCopies(opts.original, opts.fused)),
    },
    flops,
    outputs,
    layers,
    latency,
    latencySkipped,
    failures,
  };
}

/**
 * Median latency of the original and the fused model, interleaved (see compareLatency).
 * @param plan - a run count, or rounds, block and warm-up runs ({@link planLatency})
 */
export async function measureLatency(
  a: Model,
  b: Model,
  inputs: Record<string, Tensor>,
  batch: number,
  plan: number | Pick<LatencyPlan, 'rounds' | 'block' | 'warmup'>,
  threads?: number,
): Promise<LatencyStat> {
  const o =
    typeof plan === 'number'
      ? { runs: plan, threads }
      : { runs: plan.rounds * plan.block, block: plan.block, warmup: plan.warmup, threads };
  const c = await compareLatency([a, b], inputs, o);
  const block = o.block ?? Math.max(5, Math.round(o.runs / 20));
  return {
    batch,
    originalMs: c.ms[0]!,
    fusedMs: c.ms[1]!,
    ratio: c.ratio[1]!,
    runs: Math.ceil(o.runs / block) * block,
    rounds: Math.ceil(o.runs / block),
  };
}
