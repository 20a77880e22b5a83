import { GradientError, ModelError } from '../util/errors.js';
import { GraphBuilder, type Value } from '../onnx/builder.js';
import { isFloat } from '../onnx/dtype.js';
import { cloneGraph, type Dim, type Model, type Node, onnxOpset, topoSort } from '../onnx/ir.js';
import { makeTensor } from '../onnx/tensor.js';
import { gradientRule, isNonDifferentiable } from './registry.js';
import type { GradContext } from './types.js';

export interface GradientOptions {
  /** Name of the scalar loss value. */
  loss: string;
  /** Values to differentiate with respect to (parameters: initializers or graph inputs). */
  wrt: string[];
  /**
   * Initializers among `wrt` that become graph inputs, so that updated values can be fed
   * at every step without rebuilding the session (default: every initializer in `wrt`).
   */
  liftToInputs?: string[];
  /** Values to fetch besides the loss and the gradients (logits, running statistics). */
  extraOutputs?: string[];
}

export interface GradientGraph {
  /** Forward graph plus backward nodes; outputs: loss, one gradient per `wrt`, extras. */
  model: Model;
  /** Output name of each parameter's gradient. */
  gradOutputs: Record<string, string>;
  /** Parameters with no path to the loss (their gradient output is all zeros). */
  unreachable: string[];
}

/** Output name used for the gradient of `param`. */
export function gradName(param: string): string {
  return `grad::${param}`;
}

/**
 * Reverse-mode differentiation of an ONNX graph: appends to a copy of the forward graph
 * the nodes that compute d loss / d p for every `p` in `wrt`, using one gradient rule per
 * op. Only nodes on a parameter-to-loss path are differentiated. Gradients meeting at one
 * value are summed once (a single Sum node), and broadcasting is undone here, not in the
 * rules.
 *
 * @param model - forward model; the loss must be a float scalar (or a one-element tensor)
 * @param opts - loss name, parameters, extra outputs
 * @example
 * const { model: train, gradOutputs } = buildGradientGraph(model, { loss: 'loss', wrt: params });
 */
export function buildGradientGraph(model: Model, opts: GradientOptions): GradientGraph {
  const graph = cloneGraph(model.graph);
  const opset = onnxOpset(model);
  const b = new GraphBuilder({ graph, opset });
  const loss = b.value(opts.loss);
  if (!isFloat(loss.dtype))
    throw new GradientError(`loss '${opts.loss}' is ${loss.dtype}, not a float`);
  if (!loss.shape)
    throw new GradientError(`loss '${opts.loss}' must be a scalar, its rank is unknown`);
  if (loss.shape.some((d) => d !== 1)) {
    throw new GradientError(`loss '${opts.loss}' must be a scalar, got shape [${loss.shape}]`);
  }
  // A parameter listed twice gets one gradient output.
  const wrt = [...new Set(opts.wrt)];
  for (const p of wrt) {
    const v = b.value(p);
    if (!isFloat(v.dtype))
      throw new GradientError(`parameter '${p}' is ${v.dtype}; only float values have gradients`);
  }

  const order = topoSort(graph);
  // Values that depend on a parameter (forward reachability) through differentiable ops.
  const fromParams = new Set<string>(wrt);
  for (const n of order) {
    if (isNonDifferentiable(n.opType)) continue;
    if (n.inputs.some((i) => i && fromParams.has(i)))
      for (const o of n.outputs) if (o) fromParams.add(o);
  }
  // Values the loss depends on (backward reachability).
  const toLoss = new Set<string>([opts.loss]);
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (n.outputs.some((o) => toLoss.has(o))) for (const i of n.inputs) if (i) toLoss.add(i);
  }

  const pending = new Map<string, Value[]>();
  const addGrad = (name: string, g: Value) => {
    const list = pending.get(name);
    if (list) list.push(g);
    else pending.set(name, [g]);
  };
  const takeGrad = (name: string): Value | null => {
    const list = pending.get(name);
    if (!list || list.length === 0) return null;
    const g = list.length === 1 ? list[0]! : b.op1('Sum', list, {}, `grad_sum`);
    pending.set(name, [g]);
    return g;
  };

  const seedDims = loss.shape.map(() => 1);
  const seed = makeTensor(loss.dtype, seedDims, [1]);
  addGrad(opts.loss, b.constant(seed, 'grad_seed'));

  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!;
    if (!node.outputs.some((o) => o && toLoss.has(o) && fromParams.has(o))) continue;
    const gos = node.outputs.map((o) => (o ? takeGrad(o) : null));
    if (gos.every((g) => g === null)) continue;
    if (isNonDifferentiable(node.opType)) continue;
    const rule = gradientRule(node.opType);
    if (!rule || (node.domain !== '' && node.domain !== 'ai.onnx')) {
      throw new GradientError(`no gradient rule for ${node.opType} (node ${node.name})`);
    }
    const needs = node.inputs.map((i) => !!i && fromParams.has(i) && isFloat(b.value(i).dtype));
    const ctx = makeContext(b, node, gos, needs);
    const grads = b.scope(`grad`, () => rule.grad(ctx));
    node.inputs.forEach((inp, i) => {
      if (!needs[i]) return;
      const g = grads[i];
      if (!g) return;
      addGrad(inp, reduceToShape(b, g, b.value(inp), node));
    });
  }

  const gradOutputs: Record<string, string> = {};
  const unreachable: string[] = [];
  const liftSet = new Set(opts.liftToInputs ?? wrt.filter((p) => graph.initializers.has(p)));
  for (const p of wrt) {
    let g = takeGrad(p);
    const pv = b.value(p);
    if (!g) {
      unreachable.push(p);
      g = b.op1('ConstantOfShape', [b.op1('Shape', [pv])], {
        value: makeTensor(pv.dtype, [1], [0]),
      });
    }
    const out = b.output(g, gradName(p));
    gradOutputs[p] = out.name;
  }
  graph.outputs = graph.outputs.filter((o) => o.name.startsWith('grad::'));
  graph.outputs.unshift({ name: loss.name, dtype: loss.dtype, shape: loss.shape });
  for (const e of opts.extraOutputs ?? []) {
    if (graph.outputs.some((o) => o.name === e)) continue;
    const v = b.value(e);
    graph.outputs.push({ name: v.name, dtype: v.dtype, shape: v.shape });
  }
  for (const p of liftSet) {
    const t = graph.initializers.get(p);
    if (!t) throw new ModelError(`cannot lift '${p}' to an input: it is not an initializer`);
    graph.initializers.delete(p);
    graph.inputs.push({ name: p, dtype: t.dtype, shape: [...t.dims] });
  }
  return { model: { ...model, graph }, gradOutputs, unreachable };
}

function makeContext(
  b: GraphBuilder,
  node: Node,
  gos: (Value | null)[],
  needs: boolean[],
): GradContext {
  let inputCount = node.inputs.length;
  while (inputCount > 0 && node.inputs[inputCount - 1] === '') inputCount--;
  return {
    node,
    b,
    inputCount,
    I: (i) => (node.inputs[i] ? b.value(node.inputs[i]) : null),
    O: (i) => b.value(node.outputs[i]!),
    GO: (i) => gos[i] ?? null,
    needsGrad: (i) => needs[i] ?? false,
    attrs<T>() {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node.attrs)) o[k] = v.value;
      return o as Partial<T>;
    },
  };
}

function sameShape(a: Dim[], c: Dim[]): boolean {
  return a.length === c.length && a.every((d, i) => d === c[i] && d !== null);
}

/**
 * Sums a gradient over the axes along which `target` was broadcast, then reshapes it to
 * `target`'s shape. Needs `target`'s rank and which of its dims are 1.
 */
export function reduceToShape(b: GraphBuilder, g: Value, target: Value, node?: Node): Value {
  const gs = g.shape;
  const ts = target.shape;
  if (gs && ts && sameShape(gs, ts)) return g;
  if (!gs || !ts) {
    throw new GradientError(
      `cannot undo broadcasting for '${target.name}'${node ? ` (node ${node.name})` : ''}: rank unknown`,
    );
  }
  const lead = gs.length - ts.length;
  if (lead < 0) {
    throw new GradientError(
      `gradient of '${target.name}' has rank ${gs.length} < ${ts.length}${node ? ` (node ${node.name})` : ''}`,
    );
  }
  const axes: number[] = [];
  for (let k = 0; k < gs.length; k++) {
    if (k < lead) axes.push(k);
    else if (ts[k - lead] === 1 && gs[k] !== 1) axes.push(k);
  }
  let r = axes.length ? b.reduceSum(g, axes, true) : g;
  if (lead > 0 || (r.shape && !sameShape(r.shape, ts))) {
    const staticShape = ts.every((d) => typeof d === 'number');
    if (staticShape) r = b.reshape(r, ts);
    else r = b.op1('Reshape', [r, b.op1('Shape', [target])]);
  }
  return r;
}
