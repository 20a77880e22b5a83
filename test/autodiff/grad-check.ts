// Numeric gradient checking (after ONNX Runtime's gradient_checker): the gradient graph
// built by the engine, run through ONNX Runtime, against central finite differences of the
// forward graph, also run through ONNX Runtime.
import assert from 'node:assert/strict';
import { buildGradientGraph } from '../../src/autodiff/engine.js';
import { GraphBuilder, type Value } from '../../src/onnx/builder.js';
import type { DType } from '../../src/onnx/dtype.js';
import { makeModel } from '../../src/onnx/ir.js';
import { makeTensor, numel, type Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

export interface GradCheckInput {
  dims: number[];
  /** Maps a N(0,1) draw to the value used (keep away from kinks: relu, abs, max). */
  transform?: (v: number, i: number) => number;
  /** Given values instead of random ones. */
  values?: number[];
  /** Not differentiated (indices, masks, shapes given as data). */
  constant?: boolean;
  dtype?: DType;
}

export interface GradCheckOptions {
  /** Builds the op under test from the declared inputs; returns the value(s) to check. */
  build: (b: GraphBuilder, inputs: Record<string, Value>) => Value | Value[];
  inputs: Record<string, GradCheckInput>;
  dtype?: 'float32' | 'float64';
  seed?: number;
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Graph opset. */
  opset?: number;
}

/**
 * Checks d loss / d input for every non-constant input, where loss = Σ y ⊙ R for a fixed
 * random R (so every output element weighs differently). Returns the largest absolute
 * error seen, after asserting each element is within atol + rtol·|numeric|.
 */
export async function checkGradients(opts: GradCheckOptions): Promise<number> {
  const dtype = opts.dtype ?? 'float64';
  const rng = new Rng(opts.seed ?? 1);
  const b = new GraphBuilder({ seed: opts.seed ?? 1, opset: opts.opset });
  const values: Record<string, Value> = {};
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.inputs)) {
    const dt = spec.dtype ?? dtype;
    values[name] = b.input(name, dt, spec.dims);
    const n = numel(spec.dims);
    const data =
      spec.values ??
      Array.from({ length: n }, (_, i) => {
        const v = rng.normal();
        return spec.transform ? spec.transform(v, i) : v;
      });
    feeds[name] = makeTensor(dt, spec.dims, data);
  }
  const outs = [opts.build(b, values)].flat();
  let loss: Value | null = null;
  for (const y of outs) {
    if (!y.shape || y.shape.some((d) => typeof d !== 'number'))
      throw new Error(`output ${y.name} needs a static shape`);
    const r = b.constant(
      makeTensor(
        y.dtype,
        y.shape as number[],
        Array.from({ length: numel(y.shape as number[]) }, () => rng.normal()),
      ),
      'R',
    );
    // Σ y⊙R as numel · mean(y⊙R): the harness relies only on ReduceMean and Mul rules.
    const count = numel(y.shape as number[]);
    const term = b.mul(
      b.op1('ReduceMean', [b.mul(y, r)], { keepdims: 0 }),
      b.scalar(count, y.dtype),
    );
    loss = loss ? b.add(loss, term) : term;
  }
  b.output(loss!, 'loss');
  const { model } = b.build();
  const wrt = Object.entries(opts.inputs)
    .filter(([, s]) => !s.constant)
    .map(([k]) => k);
  const grad = buildGradientGraph(model, { loss: 'loss', wrt });
  const gs = await Session.create(grad.model, { threads: 1 });
  const analytic = await gs.run(feeds);
  const fs = await Session.create(makeModel(model.graph, b.opset), { threads: 1 });
  const eps = opts.eps ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = opts.rtol ?? (dtype === 'float64' ? 1e-5 : 2e-2);
  const atol = opts.atol ?? (dtype === 'float64' ? 1e-7 : 2e-3);
  let worst = 0;
  for (const name of wrt) {
    const x = feeds[name]!.data as Float64Array | Float32Array;
    const ga = analytic[grad.gradOutputs[name]!]!.data as Float64Array | Float32Array;
    assert.equal(
      ga.length,
      x.length,
      `gradient of ${name} has ${ga.length} elements, input has ${x.length}`,
    );
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      x[i] = orig + eps;
      const lp = Number((await fs.run(feeds, ['loss'])).loss!.data[0]);
      x[i] = orig - eps;
      const lm = Number((await fs.run(feeds, ['loss'])).loss!.data[0]);
      x[i] = orig;
      const numeric = (lp - lm) / (2 * eps);
      const err = Math.abs(ga[i]! - numeric);
      worst = Math.max(worst, err);
      assert.ok(
        err <= atol + rtol * Math.abs(numeric),
        `d loss / d ${name}[${i}]: analytic ${ga[i]} vs numeric ${numeric} (err ${err})`,
      );
    }
  }
  await gs.release();
  await fs.release();
  return worst;
}

/** Keeps a N(0,1) draw at least `gap` away from 0 (for Relu, Abs, Sign-like kinks). */
export const awayFromZero =
  (gap = 0.2) =>
  (v: number) =>
    v >= 0 ? v + gap : v - gap;

/** A positive value (for Log, Sqrt, Pow with fractional exponents, divisors). */
export const positive =
  (lo = 0.5) =>
  (v: number) =>
    lo + Math.abs(v);
