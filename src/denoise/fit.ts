import { readFileSync } from 'node:fs';
import { DataError, UsageError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { feedBatchSize, sliceFeeds } from '../runtime/feeds.js';
import { Session, type SessionOptions } from '../runtime/session.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  type CovarianceSpectrum,
  covarianceSpectrum,
  type FittedDenoiser,
  fitDenoiserCompiled,
  fitDenoiserSpectral,
  fusedMapSpectrum,
  MomentAccumulator,
} from './closed-form.js';
import { DenseKernels } from './linalg-compiled.js';
import { denoisedValueName, finishSurgery, surgeryBuilder } from './graph.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';

/**
 * A copy of the model that also outputs, for each planned layer, the count, sum and Gram
 * matrix XᵀX of the features its denoiser sees (rows = positions: tokens or pixels),
 * computed by ONNX Runtime in float64 and added to running totals fed in as inputs
 * (`moments::sum_in::<layer>`, `moments::gram_in::<layer>`), so that a pass over many
 * batches keeps one set of float64 sums.
 */
export function momentModel(model: Model, plan: ConversionPlan): Model {
  const b = surgeryBuilder(model);
  for (const p of plan.layers) {
    let x = b.value(denoisedValueName(p));
    if (p.side === 'output') {
      // NCHW -> rows of channels: [N·H·W, C]
      const r = x.shape?.length ?? 4;
      x = b.transpose(x, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
    }
    const rows = b.op1('Cast', [b.reshape(x, [-1, p.dim])], { to: 11 });
    const sumIn = b.input(`moments::sum_in::${p.layer.name}`, 'float64', [p.dim]);
    const gramIn = b.input(`moments::gram_in::${p.layer.name}`, 'float64', [p.dim, p.dim]);
    b.output(b.add(b.reduceSum(rows, [0], false), sumIn), `moments::sum::${p.layer.name}`);
    // Gemm with transA reads the rows in place (no transposed float64 copy).
    b.output(
      b.op1('Gemm', [rows, rows, gramIn], { transA: 1, beta: 1 }),
      `moments::gram::${p.layer.name}`,
    );
    b.output(b.op1('Shape', [rows]), `moments::shape::${p.layer.name}`);
  }
  return finishSurgery(model, b);
}

/**
 * One pass over the data: per-layer moments of the denoisers' inputs, summed by ONNX
 * Runtime in float64 into one set of accumulators (a ViT-B's Gram matrices take 1.1 GB):
 * each run reads the totals so far and writes the new totals over them. Each fed batch runs
 * a few images at a time, the first image alone, then as many as keep the layer inputs the
 * statistics read near `chunkBytes`: ONNX Runtime keeps every planned layer's input alive
 * until its sums are taken (1.7 GB for a ViT-B at batch 32).
 * @param model - the backbone
 * @param plan - selected layers
 * @param batches - graph feeds, one batch at a time
 * @param opts - session options; `onBatch` (images of each fed batch, once it is done);
 *   `chunkBytes` (default 256 MB)
 */
export async function collectMoments(
  model: Model,
  plan: ConversionPlan,
  batches: AsyncIterable<Record<string, Tensor>> | Iterable<Record<string, Tensor>>,
  opts: {
    session?: SessionOptions;
    onBatch?: (images: number) => void;
    chunkBytes?: number;
  } = {},
): Promise<Map<string, MomentAccumulator>> {
  const session = await Session.create(momentModel(model, plan), opts.session);
  const stats = new Map(plan.layers.map((p) => [p.layer.name, new MomentAccumulator(p.dim)]));
  const fetch = plan.layers.flatMap((p) =>
    ['sum', 'gram', 'shape'].map((k) => `moments::${k}::${p.layer.name}`),
  );
  // The totals, as inputs and as the buffers the outputs are written into. onnxruntime-node
  // computes each output into memory of its own and copies it into the given buffer after
  // the run (measured: the run's peak grows by the outputs' size), so a run reads the old
  // totals and then writes the new ones; were it to write in place, Gemm with C = Y and an
  // element-wise Add would still be exact. test/denoise/moments.test.ts checks the sums
  // against plain JavaScript over several runs.
  const totals: Record<string, Tensor> = {};
  const into: Record<string, Tensor> = {};
  for (const p of plan.layers) {
    const acc = stats.get(p.layer.name)!;
    const sum = float64Tensor([p.dim], acc.sum);
    const gram = float64Tensor([p.dim, p.dim], acc.gram);
    totals[`moments::sum_in::${p.layer.name}`] = sum;
    totals[`moments::gram_in::${p.layer.name}`] = gram;
    into[`moments::sum::${p.layer.name}`] = sum;
    into[`moments::gram::${p.layer.name}`] = gram;
  }
  let chunk = 1;
  try {
    for await (const feeds of batches) {
      const total = feedBatchSize(feeds);
      for (let start = 0; start < total;) {
        const count = Math.min(chunk, total - start);
        const out = await session.run(
          { ...sliceFeeds(feeds, total, start, count), ...totals },
          fetch,
          into,
        );
        let bytes = 0;
        for (const p of plan.layers) {
          const rows = Number(out[`moments::shape::${p.layer.name}`]!.data[0]);
          bytes += rows * p.dim * 4;
          stats.get(p.layer.name)!.count += rows;
        }
        start += count;
        chunk = Math.max(1, Math.floor(((opts.chunkBytes ?? 256e6) * count) / Math.max(1, bytes)));
      }
      opts.onBatch?.(total);
    }
  } finally {
    await session.release();
  }
  return stats;
}

const float64Tensor = (dims: number[], data: Float64Array): Tensor => ({
  dtype: 'float64',
  dims,
  data,
});

export interface ClosedFormReport {
  layer: string;
  t: number;
  samples: number;
  regularised: boolean;
  jitter: number;
}

/** What {@link fitClosedForm} produced. */
export interface ClosedFormFit {
  values: Map<string, Tensor>;
  report: ClosedFormReport[];
  /**
   * Per layer, the singular values (descending) of its fused map c3 I − c1 Wd, from the
   * eigenvalues of the layer's input covariance.
   */
  spectra: Map<string, Float64Array>;
}

/**
 * The MSE-optimal linear denoiser of every planned layer from its input moments
 * (Wd = s2 (s1² S + s2² I)⁻¹, bias cancelling the mean), with the spectrum of each fused
 * map. A layer without affine terms (no bias to fuse into) gets the optimum among
 * bias-free predictors, which uses the uncentred second moment in place of the covariance.
 * The linear algebra runs compiled and multi-threaded ({@link fitDenoiserCompiled}).
 * @param plan - selected layers and their steps
 * @param stats - moments by layer name ({@link collectMoments})
 * @param opts - `ridge`; `kernels` to share (else made here with `threads` and released);
 *   `consume`: delete each layer's entry from `stats` once it is fitted (saves memory)
 * @example const { values, spectra } = await fitClosedForm(plan, stats);
 */
export async function fitClosedForm(
  plan: ConversionPlan,
  stats: Map<string, MomentAccumulator>,
  opts: { ridge?: number; kernels?: DenseKernels; threads?: number; consume?: boolean } = {},
): Promise<ClosedFormFit> {
  const values = new Map<string, Tensor>();
  const report: ClosedFormReport[] = [];
  const spectra = new Map<string, Float64Array>();
  const kernels = opts.kernels ?? new DenseKernels({ threads: opts.threads });
  try {
    for (const p of plan.layers) {
      const used = layerStats(p, stats);
      const fit = await fitDenoiserCompiled(used, p.coeffs, kernels, {
        ridge: opts.ridge,
        name: `layer '${p.layer.name}'`,
      });
      // A 3,072-wide layer's statistics take 75 MB: let them go once used.
      if (opts.consume) stats.delete(p.layer.name);
      setDenoiser(values, p, fit);
      spectra.set(
        p.layer.name,
        fusedMapSpectrum(fit.covarianceEigenvalues, p.coeffs, (opts.ridge ?? 0) + fit.jitter),
      );
      report.push({
        layer: p.layer.name,
        t: p.t,
        samples: used.count,
        regularised: fit.regularised,
        jitter: fit.jitter,
      });
    }
  } finally {
    if (!opts.kernels) await kernels.release();
  }
  return { values, report, spectra };
}

/**
 * The closed-form denoisers at many noise levels from one eigendecomposition per layer:
 * `plans` are the same layers planned under different schedules (noise scales, timestep
 * spreads), e.g. `scales.map((k) => planConversion(g, { schedule: { noiseScale: k } }))`.
 * Each level then costs O(d³) per layer and no factorisation; the result equals
 * {@link fitClosedForm} on each plan (see {@link fitDenoiserSpectral}).
 * @param plans - one plan per level, all selecting the same layers
 * @param stats - moments of the layers' clean inputs ({@link collectMoments})
 * @param opts - ridge
 * @returns the denoiser values of each plan, in the order of `plans`, and each layer's spectrum
 */
export function fitClosedFormSweep(
  plans: readonly ConversionPlan[],
  stats: Map<string, MomentAccumulator>,
  opts: { ridge?: number } = {},
): { values: Map<string, Tensor>[]; spectra: Map<string, CovarianceSpectrum> } {
  if (plans.length === 0) throw new UsageError('closed-form sweep: no plan given');
  const key = (pl: ConversionPlan) => pl.layers.map((p) => `${p.layer.name}:${p.dim}`).join('|');
  const first = key(plans[0]!);
  plans.forEach((pl, i) => {
    if (key(pl) !== first)
      throw new UsageError(`closed-form sweep: plan ${i} selects other layers than plan 0`);
  });
  const spectra = new Map<string, CovarianceSpectrum>();
  for (const p of plans[0]!.layers) {
    spectra.set(p.layer.name, covarianceSpectrum(layerStats(p, stats), `layer '${p.layer.name}'`));
  }
  const values = plans.map((pl) => {
    const out = new Map<string, Tensor>();
    for (const p of pl.layers) {
      const fit = fitDenoiserSpectral(spectra.get(p.layer.name)!, p.coeffs, {
        ridge: opts.ridge,
        name: `layer '${p.layer.name}'`,
      });
      setDenoiser(out, p, fit);
    }
    return out;
  });
  return { values, spectra };
}

/**
 * A layer's statistics as the fit uses them: checked against the plan; for a layer without
 * affine terms the mean is dropped, so that the "covariance" is the uncentred second
 * moment (the optimum among bias-free predictors).
 */
function layerStats(p: DenoiserPlan, stats: Map<string, MomentAccumulator>): MomentAccumulator {
  const s = stats.get(p.layer.name);
  if (!s) throw new DataError(`no statistics for layer '${p.layer.name}'`);
  if (s.dim !== p.dim)
    throw new DataError(
      `statistics for layer '${p.layer.name}' have dim ${s.dim}, expected ${p.dim}`,
    );
  if (p.affine) return s;
  const used = new MomentAccumulator(s.dim).merge(s);
  used.sum.fill(0);
  return used;
}

function setDenoiser(values: Map<string, Tensor>, p: DenoiserPlan, fit: FittedDenoiser): void {
  values.set(p.names.weight, float32([p.dim, p.dim], Float32Array.from(fit.Wd)));
  if (p.names.bias) values.set(p.names.bias, float32([p.dim], Float32Array.from(fit.bd)));
  if (p.names.embed) values.set(p.names.embed, float32([p.dim], Float32Array.from(fit.e)));
}

const STATS_MAGIC = 'denoiserep-moments';

/**
 * Writes per-layer moments to one file (a JSON header line, then each layer's
 * MomentAccumulator bytes), so shards computed on different machines can be summed.
 */
export function writeMoments(
  path: string,
  plan: ConversionPlan,
  stats: Map<string, MomentAccumulator>,
  meta: Record<string, unknown> = {},
): void {
  const parts = plan.layers.map((p) => stats.get(p.layer.name)!.serialize());
  const header = {
    format: STATS_MAGIC,
    version: 1,
    ...meta,
    layers: plan.layers.map((p, i) => ({
      name: p.layer.name,
      dim: p.dim,
      t: p.t,
      bytes: parts[i]!.length,
    })),
  };
  const head = new TextEncoder().encode(`${JSON.stringify(header)}\n`);
  const out = new Uint8Array(head.length + parts.reduce((s, p) => s + p.length, 0));
  out.set(head, 0);
  let off = head.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  writeFileAtomic(path, out);
}

/** Reads a moments file written by {@link writeMoments}. */
export function readMoments(path: string): {
  header: Record<string, unknown>;
  stats: Map<string, MomentAccumulator>;
} {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new DataError(`cannot read statistics file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const nl = buf.indexOf(10);
  let header: { format?: string; layers?: { name: string; dim: number; bytes: number }[] } & Record<
    string,
    unknown
  >;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(0, nl))) as typeof header;
  } catch {
    throw new DataError(`${path}: not a denoiserep statistics file`);
  }
  if (header.format !== STATS_MAGIC || !Array.isArray(header.layers))
    throw new DataError(`${path}: not a denoiserep statistics file`);
  const stats = new Map<string, MomentAccumulator>();
  let off = nl + 1;
  for (const l of header.layers) {
    if (off + l.bytes > buf.length) throw new DataError(`${path}: truncated at layer '${l.name}'`);
    stats.set(
      l.name,
      MomentAccumulator.deserialize(buf.subarray(off, off + l.bytes), `${path} (layer ${l.name})`),
    );
    off += l.bytes;
  }
  return { header, stats };
}

/**
 * Sums shard statistics layer by layer; all shards must list the same layers and dims.
 * Files written by `fit --shard i/n` (their header says `shard: 'i/n'`) must be the n
 * shards of one split, each once: a shard given twice would count its images twice, a
 * missing one would leave its images out without a word.
 */
export function mergeMoments(
  shards: {
    source: string;
    stats: Map<string, MomentAccumulator>;
    header?: Record<string, unknown>;
  }[],
): Map<string, MomentAccumulator> {
  if (shards.length === 0) throw new DataError('no statistics files to merge');
  checkShardSet(shards);
  const first = shards[0]!;
  const out = new Map<string, MomentAccumulator>();
  for (const [name, acc] of first.stats) out.set(name, new MomentAccumulator(acc.dim).merge(acc));
  for (const s of shards.slice(1)) {
    const names = [...s.stats.keys()];
    if (names.join('|') !== [...first.stats.keys()].join('|')) {
      throw new DataError(
        `${s.source}: its layers differ from ${first.source}'s (was it computed on another model or --layers?)`,
      );
    }
    for (const [name, acc] of s.stats) out.get(name)!.merge(acc);
  }
  return out;
}

function checkShardSet(shards: { source: string; header?: Record<string, unknown> }[]): void {
  const specs = shards.map((s) => {
    const shard = s.header?.shard;
    const m = /^(\d+)\/(\d+)$/.exec(typeof shard === 'string' ? shard : '');
    return m ? { source: s.source, index: Number(m[1]), count: Number(m[2]) } : undefined;
  });
  if (specs.every((s) => s === undefined)) return;
  const bad = shards.find((_, i) => specs[i] === undefined);
  if (bad)
    throw new DataError(`${bad.source}: not written by fit --shard (no shard in its header)`);
  const n = specs[0]!.count;
  const other = specs.find((s) => s!.count !== n);
  if (other)
    throw new DataError(
      `${other.source} is shard ${other.index}/${other.count} but ${specs[0]!.source} is of a split into ${n}`,
    );
  const seen = new Map<number, string>();
  for (const s of specs) {
    const dup = seen.get(s!.index);
    if (dup) throw new DataError(`${s!.source} and ${dup} are both shard ${s!.index}/${n}`);
    seen.set(s!.index, s!.source);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length)
    throw new DataError(
      `statistics of shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} missing (${shards.length} of ${n} files given)`,
    );
}

/** One planned layer, JSON-able (for inspect and reports). */
export interface PlannedLayerInfo {
  layer: string;
  op: string;
  kind: 'linear' | 'conv';
  side: 'input' | 'output';
  in: number;
  out: number;
  denoiserDim: number;
  affine: boolean;
  t: number;
  c1: number;
  c3: number;
}

/** Layers of a plan as a short JSON-able list (for inspect and reports). */
export function describePlan(plan: ConversionPlan): PlannedLayerInfo[] {
  return plan.layers.map((p: DenoiserPlan) => ({
    layer: p.layer.name,
    op: p.layer.node.opType,
    kind: p.layer.kind,
    side: p.side,
    in: p.layer.inFeatures,
    out: p.layer.outFeatures,
    denoiserDim: p.dim,
    affine: p.affine,
    t: p.t,
    c1: p.coeffs.c1,
    c3: p.coeffs.c3,
  }));
}
