// Exact gradients for hand-worked cases: d loss / d input for loss = Σ y ⊙ W (W all ones
// unless given), run through the engine's gradient graph on ONNX Runtime.
import { buildGradientGraph } from '../../../src/autodiff/engine.js';
import { GraphBuilder, type Value } from '../../../src/onnx/builder.js';
import type { DType } from '../../../src/onnx/dtype.js';
import { makeTensor, numel, type Tensor, toNumbers } from '../../../src/onnx/tensor.js';
import { Session } from '../../../src/runtime/session.js';

export interface ExactInput {
  dims: number[];
  values: number[];
  dtype?: DType;
  /** Not differentiated. */
  constant?: boolean;
}

export interface ExactResult {
  /** Gradient of each differentiated input, flattened. */
  grads: Record<string, number[]>;
  /** Values fetched besides the gradients (by the names `build` gave them). */
  extras: Record<string, number[]>;
}

/**
 * Builds y = build(inputs), loss = Σ y ⊙ W, and returns the gradients of the loss.
 * @param opts.weights - W, flattened (default: ones, so loss = Σ y)
 * @param opts.extras - values of the forward graph to fetch too (a Dropout mask)
 */
export async function exactGradients(opts: {
  inputs: Record<string, ExactInput>;
  build: (b: GraphBuilder, v: Record<string, Value>) => Value;
  weights?: number[];
  extras?: (b: GraphBuilder) => Value[];
  opset?: number;
}): Promise<ExactResult> {
  const b = new GraphBuilder({ opset: opts.opset });
  const v: Record<string, Value> = {};
  const feeds: Record<string, Tensor> = {};
  for (const [name, spec] of Object.entries(opts.inputs)) {
    const dt = spec.dtype ?? 'float64';
    v[name] = b.input(name, dt, spec.dims);
    feeds[name] = makeTensor(dt, spec.dims, spec.values);
  }
  const y = opts.build(b, v);
  const dims = y.shape as number[];
  const w = b.constant(makeTensor(y.dtype, dims, opts.weights ?? Array(numel(dims)).fill(1)));
  b.output(b.op1('ReduceSum', [b.mul(y, w)], { keepdims: 0 }), 'loss');
  const extraNames = (opts.extras?.(b) ?? []).map((e) => e.name);
  const wrt = Object.entries(opts.inputs)
    .filter(([, s]) => !s.constant)
    .map(([k]) => k);
  const g = buildGradientGraph(b.build().model, { loss: 'loss', wrt, extraOutputs: extraNames });
  const s = await Session.create(g.model, { threads: 1 });
  const out = await s.run(feeds);
  await s.release();
  const grads: Record<string, number[]> = {};
  for (const k of wrt) grads[k] = toNumbers(out[g.gradOutputs[k]!]!);
  const extras: Record<string, number[]> = {};
  for (const e of extraNames) extras[e] = toNumbers(out[e]!);
  return { grads, extras };
}
