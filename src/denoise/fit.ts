import { readFileSync } from 'node:fs';
import { DataError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import { float32, type Tensor } from '../onnx/tensor.js';
import { Session, type SessionOptions } from '../runtime/session.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { fitDenoiserCompiled, fusedMapSpectrum, MomentAccumulator } from './closed-form.js';
import { DenseKernels } from './linalg-compiled.js';
import { denoisedValueName, finishSurgery, surgeryBuilder } from './graph.js';
import type { ConversionPlan, DenoiserPlan } from './plan.js';

/**
 * A copy of the model that also computes, for each planned layer, the count, sum and Gram
 * matrix XᵀX of the features its denoiser sees (rows = positions: tokens or pixels) in
 * float64, added to running totals fed as inputs: `moments::sum_in::<layer>` (dim) and
 * `moments::gram_in::<layer>` (dim x dim) give `moments::sum::<layer>` and
 * `moments::gram::<layer>`, so the totals never leave float64 nor need a second copy.
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
    // Gemm with transA reads the rows in place (no transposed float64 copy); C adds the total.
    b.output(
      b.op1('Gemm', [rows, rows, gramIn], { transA: 1, beta: 1 }),
      `moments::gram::${p.layer.name}`,
    );
    b.output(b.op1('Shape', [rows]), `moments::shape::${p.layer.name}`);
  }
  return finishSurgery(model, b);
}

/**
 * One pass over the data: per-layer moments of the denoisers' inputs. The running totals
 * stay in two sets of float64 buffers that ONNX Runtime reads and writes in turn (one is
 * the input of a batch, the other its output), so memory holds twice the statistics,
 * never more (a ViT-B's 50 layers: 2 x 1.1 GB).
 * @param model - the backbone
 * @param plan - selected layers
 * @param batches - graph feeds, one batch at a time
 * @param onBatch - progress callback
 */
export async function collectMoments(
  model: Model,
  plan: ConversionPlan,
  batches: AsyncIterable<Record<string, Tensor>> | Iterable<Record<string, Tensor>>,
  opts: { session?: SessionOptions; onBatch?: (images: number) => void } = {},
): Promise<Map<string, MomentAccumulator>> {
  const session = await Session.create(momentModel(model, plan), opts.session);
  const f64 = (dims: number[]): Tensor => ({
    dtype: 'float64',
    dims,
    data: new Float64Array(dims.reduce((a, d) => a * d, 1)),
  });
  const totals = plan.layers.map((p) => ({ sum: f64([p.dim]), gram: f64([p.dim, p.dim]) }));
  let spare: { sum: Tensor; gram: Tensor }[] | null = null;
  const counts = plan.layers.map(() => 0);
  const fetch = plan.layers.flatMap((p) =>
    ['sum', 'gram', 'shape'].map((k) => `moments::${k}::${p.layer.name}`),
  );
  try {
    let cur = totals;
    for await (const feeds of batches) {
      spare ??= plan.layers.map((p) => ({ sum: f64([p.dim]), gram: f64([p.dim, p.dim]) }));
      const next = spare;
      const inputs: Record<string, Tensor> = { ...feeds };
      const into: Record<string, Tensor> = {};
      plan.layers.forEach((p, i) => {
        inputs[`moments::sum_in::${p.layer.name}`] = cur[i]!.sum;
        inputs[`moments::gram_in::${p.layer.name}`] = cur[i]!.gram;
        into[`moments::sum::${p.layer.name}`] = next[i]!.sum;
        into[`moments::gram::${p.layer.name}`] = next[i]!.gram;
      });
      const out = await session.run(inputs, fetch, into);
      plan.layers.forEach((p, i) => {
        counts[i]! += Number(out[`moments::shape::${p.layer.name}`]!.data[0]);
      });
      spare = cur;
      cur = next;
      const first = Object.values(feeds)[0];
      opts.onBatch?.(first ? first.dims[0]! : 0);
    }
    return new Map(
      plan.layers.map((p, i) => [
        p.layer.name,
        new MomentAccumulator(p.dim, {
          count: counts[i]!,
          sum: cur[i]!.sum.data as Float64Array,
          gram: cur[i]!.gram.data as Float64Array,
        }),
      ]),
    );
  } finally {
    await session.release();
  }
}

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
      const s = stats.get(p.layer.name);
      if (!s) throw new DataError(`no statistics for layer '${p.layer.name}'`);
      if (s.dim !== p.dim)
        throw new DataError(
          `statistics for layer '${p.layer.name}' have dim ${s.dim}, expected ${p.dim}`,
        );
      let used = s;
      if (!p.affine) {
        used = new MomentAccumulator(s.dim).merge(s);
        used.sum.fill(0);
      }
      const fit = await fitDenoiserCompiled(used, p.coeffs, kernels, {
        ridge: opts.ridge,
        name: `layer '${p.layer.name}'`,
      });
      // A 3,072-wide layer's statistics take 75 MB: let them go once used.
      if (opts.consume) stats.delete(p.layer.name);
      values.set(p.names.weight, float32([p.dim, p.dim], Float32Array.from(fit.Wd)));
      if (p.names.bias) values.set(p.names.bias, float32([p.dim], Float32Array.from(fit.bd)));
      if (p.names.embed) values.set(p.names.embed, float32([p.dim], Float32Array.from(fit.e)));
      spectra.set(
        p.layer.name,
        fusedMapSpectrum(fit.covarianceEigenvalues, p.coeffs, (opts.ridge ?? 0) + fit.jitter),
      );
      report.push({
        layer: p.layer.name,
        t: p.t,
        samples: s.count,
        regularised: fit.regularised,
        jitter: fit.jitter,
      });
    }
  } finally {
    if (!opts.kernels) await kernels.release();
  }
  return { values, report, spectra };
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
    header = JSON.parse(new TextDecoder().decode(buf.subarray(0, nl)));
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

/** Sums shard statistics layer by layer; all shards must list the same layers and dims. */
export function mergeMoments(
  shards: { source: string; stats: Map<string, MomentAccumulator> }[],
): Map<string, MomentAccumulator> {
  if (shards.length === 0) throw new DataError('no statistics files to merge');
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
