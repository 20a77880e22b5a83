import { readFileSync } from 'node:fs';
import { DataError, UsageError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import type { Value } from '../onnx/builder.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { FeedChunks } from '../runtime/feeds.js';
import { Session, type SessionOptions } from '../runtime/session.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  type CovarianceSpectrum,
  covarianceSpectrum,
  type FittedDenoiser,
  fitLayerCompiled,
  fitDenoiserSpectral,
  fusedMapSpectrum,
  MomentAccumulator,
} from './closed-form.js';
import { DenseKernels } from './linalg-compiled.js';
import { LayerPool } from './layer-pool.js';
import { denoisedValueName, finishSurgery, surgeryBuilder } from './graph.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';

/**
 * Widths from which a layer's Gram matrix is computed as the three blocks of its upper
 * block triangle ([G11 G12; G12ᵀ G22], the features split in two halves): a quarter fewer
 * flops and a quarter less memory for the outputs and the totals.
 */
export const GRAM_SPLIT_DIM = 1024;

/** Where a layer's features are split for its Gram blocks: [0, h, dim] or [0, dim]. */
function gramCuts(dim: number, splitDim: number): number[] {
  return dim >= splitDim ? [0, Math.floor(dim / 2), dim] : [0, dim];
}

/**
 * Entries of a layer's Gram matrix the statistics pass computes per row: dim² or, for a
 * layer taken by blocks, those of its upper block triangle (about three quarters).
 */
export function gramEntries(dim: number, splitDim = GRAM_SPLIT_DIM): number {
  const cuts = gramCuts(dim, splitDim);
  const w = (i: number) => cuts[i + 1]! - cuts[i]!;
  return momentNames('', cuts.length - 1).blocks.reduce((a, [i, j]) => a + w(i) * w(j), 0);
}

/** Output names of a layer's moments; the Gram blocks i <= j of its feature parts. */
const momentNames = (layer: string, parts: number) => ({
  sum: (i: number) => `moments::sum::${layer}::${i}`,
  gram: (i: number, j: number) => `moments::gram::${layer}::${i}${j}`,
  shape: `moments::shape::${layer}`,
  blocks: Array.from({ length: parts }, (_, i) =>
    Array.from({ length: parts - i }, (_, k) => [i, i + k] as const),
  ).flat(),
});

/**
 * A copy of the model that also outputs, for each planned layer, the count, sum and Gram
 * matrix XᵀX of the features its denoiser sees (rows = positions: tokens or pixels),
 * computed by ONNX Runtime in float64 and added to running totals fed in as inputs (each
 * output `moments::…` has an input `moments::…::in`), so that a pass over many batches keeps
 * one set of float64 sums. Layers at least `splitDim` wide ({@link GRAM_SPLIT_DIM}) give
 * their sum in two parts and their Gram matrix as the blocks 00, 01 and 11.
 */
export function momentModel(model: Model, plan: ConversionPlan, splitDim = GRAM_SPLIT_DIM): Model {
  const b = surgeryBuilder(model);
  for (const p of plan.layers) {
    let x = b.value(denoisedValueName(p));
    if (p.side === 'output') {
      // NCHW -> rows of channels: [N·H·W, C]
      const r = x.shape?.length ?? 4;
      x = b.transpose(x, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
    }
    const rows = b.reshape(x, [-1, p.dim]);
    const cuts = gramCuts(p.dim, splitDim);
    const n = momentNames(p.layer.name, cuts.length - 1);
    const parts = cuts.slice(1).map((end, i) => {
      const part = cuts.length === 2 ? rows : b.slice(rows, [cuts[i]!], [end], [1]);
      return { value: b.op1('Cast', [part], { to: 11 }), width: end - cuts[i]! };
    });
    const total = (name: string, dims: number[], value: Value) =>
      b.output(b.add(value, b.input(`${name}::in`, 'float64', dims)), name);
    parts.forEach((q, i) => total(n.sum(i), [q.width], b.reduceSum(q.value, [0], false)));
    for (const [i, j] of n.blocks) {
      const qi = parts[i]!;
      const qj = parts[j]!;
      const name = n.gram(i, j);
      const acc = b.input(`${name}::in`, 'float64', [qi.width, qj.width]);
      // Gemm with transA reads the rows in place (no transposed float64 copy).
      b.output(b.op1('Gemm', [qi.value, qj.value, acc], { transA: 1, beta: 1 }), name);
    }
    b.output(b.op1('Shape', [rows]), n.shape);
  }
  return finishSurgery(model, b);
}

/**
 * One pass over the data: per-layer moments of the denoisers' inputs, summed by ONNX
 * Runtime in float64 into one set of totals (a ViT-B's Gram matrices take 1.1 GB, their
 * upper block triangles 0.8 GB): each run reads the totals so far and writes the new
 * totals over them. Each fed batch runs a few images at a time, the first image alone,
 * then as many as keep the layer inputs the statistics read near `chunkBytes`: ONNX
 * Runtime keeps every planned layer's input alive until its sums are taken (1.7 GB for a
 * ViT-B at batch 32).
 * @param model - the backbone
 * @param plan - selected layers
 * @param batches - graph feeds, one batch at a time
 * @param opts - session options; `onBatch` (images of each fed batch, once it is done);
 *   `chunkBytes` (default 256 MB); `splitDim` (see {@link momentModel})
 */
export async function collectMoments(
  model: Model,
  plan: ConversionPlan,
  batches: AsyncIterable<Record<string, Tensor>> | Iterable<Record<string, Tensor>>,
  opts: {
    session?: SessionOptions;
    onBatch?: (images: number) => void;
    chunkBytes?: number;
    splitDim?: number;
  } = {},
): Promise<Map<string, MomentAccumulator>> {
  const splitDim = opts.splitDim ?? GRAM_SPLIT_DIM;
  const session = await Session.create(momentModel(model, plan, splitDim), opts.session);
  const stats = new Map(plan.layers.map((p) => [p.layer.name, new MomentAccumulator(p.dim)]));
  // The totals, as inputs and as the buffers the outputs are written into. onnxruntime-node
  // computes each output into memory of its own and copies it into the given buffer after
  // the run (measured: the run's peak grows by the outputs' size), so a run reads the old
  // totals and then writes the new ones; were it to write in place, Gemm with C = Y and an
  // element-wise Add would still be exact. test/denoise/moments.test.ts checks the sums
  // against plain JavaScript over several runs. A layer in one part sums straight into its
  // accumulator; a split one into blocks, put together at the end.
  const totals: Record<string, Tensor> = {};
  const fetch: string[] = [];
  const total = (name: string, dims: number[], data: Float64Array) => {
    totals[name] = float64Tensor(dims, data);
    fetch.push(name);
  };
  const layers = plan.layers.map((p) => {
    const cuts = gramCuts(p.dim, splitDim);
    const n = momentNames(p.layer.name, cuts.length - 1);
    const acc = stats.get(p.layer.name)!;
    const width = (i: number) => cuts[i + 1]! - cuts[i]!;
    const whole = cuts.length === 2;
    const sums = cuts.slice(1).map((_, i) => (whole ? acc.sum : new Float64Array(width(i))));
    const grams = n.blocks.map(([i, j]) =>
      whole ? acc.gram : new Float64Array(width(i) * width(j)),
    );
    sums.forEach((d, i) => total(n.sum(i), [width(i)], d));
    n.blocks.forEach(([i, j], k) => total(n.gram(i, j), [width(i), width(j)], grams[k]!));
    fetch.push(n.shape);
    return { p, acc, cuts, blocks: n.blocks, sums, grams, shape: n.shape };
  });
  const feedsOfTotals = Object.fromEntries(Object.entries(totals).map(([k, t]) => [`${k}::in`, t]));
  const chunks = new FeedChunks(opts.chunkBytes ?? 256e6);
  try {
    for await (const feeds of batches) {
      const size = await chunks.forEach(feeds, async (slice) => {
        const out = await session.run({ ...slice, ...feedsOfTotals }, fetch, totals);
        let bytes = 0;
        for (const l of layers) {
          const rows = Number(out[l.shape]!.data[0]);
          bytes += rows * l.p.dim * 4;
          l.acc.count += rows;
        }
        return bytes;
      });
      opts.onBatch?.(size);
    }
  } finally {
    await session.release();
  }
  for (const l of layers) if (l.cuts.length > 2) assembleBlocks(l);
  return stats;
}

/** Puts a split layer's sum parts and Gram blocks (upper triangle) into its accumulator. */
function assembleBlocks(l: {
  acc: MomentAccumulator;
  cuts: number[];
  blocks: readonly (readonly [number, number])[];
  sums: Float64Array[];
  grams: Float64Array[];
}): void {
  const { acc, cuts } = l;
  const d = acc.dim;
  l.sums.forEach((s, i) => acc.sum.set(s, cuts[i]));
  l.blocks.forEach(([i, j], k) => {
    const g = l.grams[k]!;
    const r0 = cuts[i]!;
    const c0 = cuts[j]!;
    const w = cuts[j + 1]! - c0;
    for (let r = 0; r < cuts[i + 1]! - r0; r++) {
      const row = g.subarray(r * w, (r + 1) * w);
      acc.gram.set(row, (r0 + r) * d + c0);
      if (i !== j) for (let c = 0; c < w; c++) acc.gram[(c0 + c) * d + r0 + r] = row[c]!;
    }
  });
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
  /** With `weightOf`: each layer's fusion product (W·Wd or Wd·W), by layer name. */
  products?: Map<string, Float64Array>;
}

/**
 * The MSE-optimal linear denoiser of every planned layer from its input moments
 * (Wd = s2 (s1² S + s2² I)⁻¹, bias cancelling the mean), with the spectrum of each fused
 * map. A layer without affine terms (no bias to fuse into) gets the optimum among
 * bias-free predictors, which uses the uncentred second moment in place of the covariance.
 * The linear algebra runs compiled and multi-threaded ({@link fitDenoiserCompiled}), with
 * layers fitted in parallel on worker threads ({@link LayerPool}).
 * @param plan - selected layers and their steps
 * @param stats - moments by layer name ({@link collectMoments})
 * @param opts - `ridge`; `kernels` to share (else made here with `threads` and released);
 *   `workers`: worker threads fitting layers in parallel, splitting the kernels' threads
 *   between them (default 2 where there are 2 threads or more; 0: every layer on this
 *   thread. On glibc, give freed buffers back with MALLOC_MMAP_THRESHOLD_=1048576, as the
 *   `denoiserep` command does, or the workers' memory comes on top of what the statistics
 *   freed: 4.8 GB instead of 3.4 GB for a ViT-B/16; bin/denoiserep.js gives a faster
 *   setting for machines with memory to spare);
 *   `consume`: delete each layer's entry from `stats` once it is fitted (saves
 *   memory); `weightOf`: a layer's weight W as {@link fusionWeight} gives it, to compute
 *   its fusion product (W·Wd, or Wd·W for an output-side conv) as it is fitted (returned
 *   in `products`)
 * @example const { values, spectra } = await fitClosedForm(plan, stats);
 */
export async function fitClosedForm(
  plan: ConversionPlan,
  stats: Map<string, MomentAccumulator>,
  opts: {
    ridge?: number;
    kernels?: DenseKernels;
    threads?: number;
    workers?: number;
    consume?: boolean;
    weightOf?: (p: DenoiserPlan) => Float64Array | undefined;
  } = {},
): Promise<ClosedFormFit> {
  const kernels = opts.kernels ?? new DenseKernels({ threads: opts.threads });
  const workers = opts.workers ?? (kernels.threads >= 2 ? 2 : 0);
  if (!Number.isInteger(workers) || workers < 0)
    throw new UsageError(`workers must be an integer >= 0, got ${opts.workers}`);
  const pool =
    workers > 0
      ? new LayerPool({
          workers,
          threads: Math.max(1, Math.floor(kernels.threads / workers)),
          fallback: kernels,
        })
      : null;
  // Per layer, its float32 denoiser tensors, spectrum and report line, kept as each layer
  // finishes (its float64 Wd, 75 MB at 3,072 wide, can go at once).
  const fitted: {
    values: Map<string, Tensor>;
    spectrum: Float64Array;
    report: ClosedFormReport;
    product?: Float64Array;
  }[] = [];
  const fitLayer = async (i: number) => {
    const p = plan.layers[i]!;
    const used = layerStats(p, stats);
    const w = opts.weightOf?.(p);
    const settings = {
      ridge: opts.ridge,
      name: `layer '${p.layer.name}'`,
      ...(w ? { weight: { data: w, side: p.side } } : {}),
    };
    const { fit, product } = pool
      ? await pool.fit(used, p.coeffs, settings)
      : await fitLayerCompiled(used, p.coeffs, kernels, settings);
    // A 3,072-wide layer's statistics take 75 MB: let them go once used.
    if (opts.consume) stats.delete(p.layer.name);
    const values = new Map<string, Tensor>();
    setDenoiser(values, p, fit);
    const shift = (opts.ridge ?? 0) + fit.jitter;
    fitted[i] = {
      values,
      spectrum: fusedMapSpectrum(fit.covarianceEigenvalues, p.coeffs, shift),
      report: {
        layer: p.layer.name,
        t: p.t,
        samples: used.count,
        regularised: fit.regularised,
        jitter: fit.jitter,
      },
      product,
    };
  };
  // As many layers in flight as there are workers to take them (one without): the next starts
  // when any one finishes (a 3,072-wide layer takes several 768-wide ones' time).
  const running = new Set<Promise<void>>();
  try {
    for (let i = 0; i < plan.layers.length; i++) {
      if (running.size >= Math.max(1, workers)) await Promise.race(running);
      const done: Promise<void> = fitLayer(i).finally(() => running.delete(done));
      running.add(done);
    }
    await Promise.all(running);
  } finally {
    // On an error, let the other layers settle before the kernels go.
    await Promise.allSettled(running);
    await pool?.release();
    if (!opts.kernels) await kernels.release();
  }
  const values = new Map<string, Tensor>();
  const report: ClosedFormReport[] = [];
  const spectra = new Map<string, Float64Array>();
  const products = new Map<string, Float64Array>();
  plan.layers.forEach((p, i) => {
    const f = fitted[i]!;
    for (const [name, t] of f.values) values.set(name, t);
    spectra.set(p.layer.name, f.spectrum);
    report.push(f.report);
    if (f.product) products.set(p.layer.name, f.product);
  });
  return { values, report, spectra, ...(opts.weightOf ? { products } : {}) };
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
