import { ModelError } from '../util/errors.js';
import type { DType } from './dtype.js';
import { type Dim, type Graph, type Node, topoSort, type ValueInfo } from './ir.js';
import { type Tensor, toNumbers } from './tensor.js';

/**
 * A value's inferred type. `value` carries the known contents of small integer tensors
 * (shapes, axes, indices: rank 0 or 1), with symbolic entries allowed, so that
 * shape-computing subgraphs (`Shape -> Gather -> Concat -> Reshape`) infer exactly.
 */
export interface InferredValue extends ValueInfo {
  value?: Dim[];
}

/** What a shape rule sees of one node. */
export interface InferContext {
  readonly node: Node;
  readonly opset: number;
  /** Number of inputs actually given (trailing omitted ones excluded). */
  readonly inputCount: number;
  /** The i-th input's type, or undefined when it is omitted. */
  input(i: number): InferredValue | undefined;
  /** The i-th input's type; throws a ModelError naming the node if it is omitted. */
  required(i: number): InferredValue;
  /** Fails with a ModelError that names the node. */
  fail(message: string): never;
}

/** A shape rule returns the types of the node's outputs, in order. */
export type ShapeRule = (ctx: InferContext) => InferredValue[];

const rules = new Map<string, ShapeRule>();

/** Registers the shape rule of an op type (ai.onnx domain). */
export function registerShapeRule(opType: string, rule: ShapeRule): void {
  rules.set(opType, rule);
}

/** The op types that have a shape rule. */
export function knownShapeOps(): ReadonlySet<string> {
  return new Set(rules.keys());
}

/**
 * Infers the output types of one node.
 * @param node - the node
 * @param lookup - the known type of a value by name
 * @param opset - ai.onnx opset of the graph
 */
export function inferNode(
  node: Node,
  lookup: (name: string) => InferredValue | undefined,
  opset: number,
): InferredValue[] {
  const rule = rules.get(node.opType);
  const where = `node '${node.name}' (${node.opType})`;
  if (!rule || (node.domain !== '' && node.domain !== 'ai.onnx')) {
    throw new ModelError(
      `${where}: no shape inference for op '${node.domain ? `${node.domain}.` : ''}${node.opType}'`,
    );
  }
  let inputCount = node.inputs.length;
  while (inputCount > 0 && node.inputs[inputCount - 1] === '') inputCount--;
  const ctx: InferContext = {
    node,
    opset,
    inputCount,
    input(i) {
      const name = node.inputs[i];
      if (!name) return undefined;
      const v = lookup(name);
      if (!v) throw new ModelError(`${where}: type of input '${name}' is unknown`);
      return v;
    },
    required(i) {
      const v = this.input(i);
      if (!v) throw new ModelError(`${where}: required input #${i} is missing`);
      return v;
    },
    fail(message) {
      throw new ModelError(`${where}: ${message}`);
    },
  };
  const outs = rule(ctx);
  return outs.map((o, i) => ({ ...o, name: node.outputs[i] ?? o.name }));
}

/** The inferred type of a constant tensor (with contents when small and integer). */
export function tensorInfo(name: string, t: Tensor): InferredValue {
  const info: InferredValue = { name, dtype: t.dtype, shape: [...t.dims] };
  if ((t.dtype === 'int64' || t.dtype === 'int32') && t.dims.length <= 1 && t.data.length <= 64) {
    info.value = toNumbers(t);
  }
  return info;
}

/**
 * Infers every value's type in a graph, in topological order.
 * @returns a map from value name to inferred type (inputs, initializers and node outputs)
 */
export function inferShapes(graph: Graph, opset: number): Map<string, InferredValue> {
  const known = new Map<string, InferredValue>();
  for (const v of graph.inputs) known.set(v.name, { ...v });
  for (const [name, t] of graph.initializers) known.set(name, tensorInfo(name, t));
  for (const node of topoSort(graph)) {
    const outs = inferNode(node, (n) => known.get(n), opset);
    node.outputs.forEach((o, i) => {
      if (o && outs[i]) known.set(o, outs[i]!);
    });
  }
  return known;
}

// ---------------------------------------------------------------------------------------
// Helpers for rules

/** Multiplies dims; unknown or symbolic in, null out. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let p = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return null;
    p *= d;
  }
  return p;
}

/** Numpy-style broadcast of several shapes; fails on incompatible static dims. */
export function broadcastShapes(ctx: InferContext, shapes: (Dim[] | null)[]): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const ss = shapes as Dim[][];
  const rank = Math.max(...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let k = 0; k < rank; k++) {
    let d: Dim = 1;
    for (const s of ss) {
      const sd = s[s.length - rank + k];
      if (sd === undefined || sd === 1) continue;
      if (d === 1) d = sd;
      else if (typeof d === 'number' && typeof sd === 'number' && d !== sd) {
        ctx.fail(`cannot broadcast shapes ${ss.map((x) => `[${x.join(',')}]`).join(' and ')}`);
      } else if (d !== sd) d = typeof d === 'number' ? d : typeof sd === 'number' ? sd : null;
    }
    out.push(d);
  }
  return out;
}

/** Normalises a possibly negative axis against a rank; fails when out of range. */
export function normAxis(ctx: InferContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) ctx.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Same dtype on all the given inputs, or a ModelError naming both. */
export function sameDtype(ctx: InferContext, idx: number[]): DType {
  const first = ctx.required(idx[0]!);
  for (const i of idx.slice(1)) {
    const v = ctx.input(i);
    if (v && v.dtype !== first.dtype) {
      ctx.fail(`input '${v.name}' is ${v.dtype} but '${first.name}' is ${first.dtype}`);
    }
  }
  return first.dtype;
}

/** The known integer contents of an input (axes, shapes), or undefined. */
export function constInts(ctx: InferContext, i: number): number[] | undefined {
  const v = ctx.input(i);
  if (!v?.value) return undefined;
  if (v.value.some((d) => typeof d !== 'number')) return undefined;
  return v.value as number[];
}
