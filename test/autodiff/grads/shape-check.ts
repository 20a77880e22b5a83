// Helpers for the shape and indexing rule tests: a finite-difference check on graphs whose
// inputs have symbolic dims (the run-time code paths), and exact gradients of Σ y ⊙ W.
import assert from 'node:assert/strict';
import { buildGradientGraph, type GradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder, type Value } from '../../../src/onnx/builder.js';
import type { DType } from '../../../src/onnx/dtype.js';
import type { Dim } from '../../../src/onnx/ir.js';
import { makeTensor, numel, type Tensor } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';
import { Rng } from '../../../src/util/rng.js';

export interface DynInput {
  /** Shape declared in the graph (symbolic dims allowed). */
  declared: Dim[];
  /** Shape fed at run time. */
  dims: number[];
  values?: number[];
  dtype?: DType;
  /** Not differentiated (indices, pads, repeats fed at run time). */
  constant?: boolean;
}

/**
 * Finite-difference check (float64) of loss = Σ y² for a graph whose inputs may have
 * symbolic dims, so the rules take their run-time paths. Returns the gradient graph for
 * inspection.
 */
export async function checkDynamic(opts: {
  inputs: Record<string, DynInput>;
  build: (b: GraphBuilder, v: Record<string, Value>) => Value;
  seed?: number;
}): Promise<GradientGraph> {
  const rng = new Rng(opts.seed ?? 3);
  const b = new GraphBuilder();
  const v: Record<string, Value> = {};
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.inputs)) {
    const dt = spec.dtype ?? 'float64';
    v[name] = b.input(name, dt, spec.declared);
    const data = spec.values ?? Array.from({ length: numel(spec.dims) }, () => rng.normal());
    feeds[name] = makeTensor(dt, spec.dims, data);
  }
  const y = opts.build(b, v);
  b.output(b.op1('ReduceSum', [b.mul(y, y)], { keepdims: 0 }), 'loss');
  const { model } = b.build();
  const wrt = Object.entries(opts.inputs)
    .filter(([, s]) => !s.constant)
    .map(([k]) => k);
  const grad = buildGradientGraph(model, { loss: 'loss', wrt });
  const gs = await Session.create(grad.model, { threads: 1 });
  const fs = await Session.create(model, { threads: 1 });
  const analytic = await gs.run(feeds);
  const eps = 1e-6;
  for (const name of wrt) {
    const x = feeds[name]!.data as Float64Array;
    const g = analytic[grad.gradOutputs[name]!]!;
    assert.deepEqual(g.dims, feeds[name]!.dims, `gradient of ${name} has the input's shape`);
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      x[i] = orig + eps;
      const lp = Number((await fs.run(feeds)).loss!.data[0]);
      x[i] = orig - eps;
      const lm = Number((await fs.run(feeds)).loss!.data[0]);
      x[i] = orig;
      const numeric = (lp - lm) / (2 * eps);
      const got = Number(g.data[i]);
      assert.ok(
        Math.abs(got - numeric) <= 1e-7 + 1e-5 * Math.abs(numeric),
        `d loss / d ${name}[${i}]: analytic ${got} vs numeric ${numeric}`,
      );
    }
  }
  await gs.release();
  await fs.release();
  return grad;
}

/**
 * Exact gradients of loss = Σ y ⊙ W (W given, y's shape static), for hand-worked cases.
 * Returns one plain array per differentiated input.
 */
export async function weightedGrad(opts: {
  inputs: Record<string, { dims: number[]; values: number[]; dtype?: DType; constant?: boolean }>;
  build: (b: GraphBuilder, v: Record<string, Value>) => Value;
  weights: number[];
}): Promise<Record<string, number[]>> {
  const b = new GraphBuilder();
  const v: Record<string, Value> = {};
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.inputs)) {
    const dt = spec.dtype ?? 'float64';
    v[name] = b.input(name, dt, spec.dims);
    feeds[name] = makeTensor(dt, spec.dims, spec.values);
  }
  const y = opts.build(b, v);
  const w = b.constant(makeTensor(y.dtype, y.shape as number[], opts.weights), 'W');
  b.output(b.op1('ReduceSum', [b.mul(y, w)], { keepdims: 0 }), 'loss');
  const wrt = Object.entries(opts.inputs)
    .filter(([, s]) => !s.constant)
    .map(([k]) => k);
  const grad = buildGradientGraph(b.build().model, { loss: 'loss', wrt });
  const s = await Session.create(grad.model, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  return Object.fromEntries(
    wrt.map((k) => [k, Array.from(out[grad.gradOutputs[k]!]!.data as Float64Array, Number)]),
  );
}

/** Op types of the nodes the engine appended to the forward graph. */
export function backwardOps(
  build: (b: GraphBuilder) => Value,
  wrt: string[],
): { ops: string[]; grad: GradientGraph } {
  const b = new GraphBuilder();
  const y = build(b);
  b.output(b.op1('ReduceSum', [b.mul(y, y)], { keepdims: 0 }), 'loss');
  const { model } = b.build();
  const forward = model.graph.nodes.length;
  const grad = buildGradientGraph(model, { loss: 'loss', wrt });
  return { ops: grad.model.graph.nodes.slice(forward).map((n) => n.opType), grad };
}
