import { ModelError } from '../util/errors.js';
import type { DType } from './dtype.js';
import { type Dim, type Graph, type Node, topoSort, type ValueInfo } from './ir.js';
import { checkRank, checkShapeBounds } from './limits.js';
import { type Tensor, toNumbers } from './tensor.js';

/**
 * A value's inferred type. `value` carries the known contents of small integer tensors
 * (shapes, axes, indices: rank 0 or 1), with symbolic entries allowed, so that
 * shape-computing subgraphs (`Shape -> Gather -> Concat -> Reshape`) infer exactly.
 */
export interface InferredValue extends ValueInfo {
  value?: Dim[];
  /** Known contents of small float constants (rank 0 or 1), e.g. Resize's scales. */
  floats?: number[];
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
  /**
   * A shape of `rank` unknown dims (rank from a shape tensor's length, which a crafted
   * model may declare as 2^32): fails naming the node when the rank is over the limit,
   * before anything is allocated; null when the rank itself is unknown.
   */
  unknownOfRank(rank: Dim | undefined): Dim[] | null;
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

/** True when `node` has a shape rule (an ai.onnx op this project knows). */
export function hasShapeRule(node: Node): boolean {
  return (node.domain === '' || node.domain === 'ai.onnx') && rules.has(node.opType);
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
    unknownOfRank(rank) {
      if (typeof rank !== 'number') return null;
      checkRank(`${where}: the shape input declares ${rank} dims`, rank);
      return Array<Dim>(rank).fill(null);
    },
  };
  const outs = rule(ctx);
  return outs.map((o, i) => {
    const name = node.outputs[i] ?? o.name;
    // A dim a rule could not read (an index past a short list) is unknown, not undefined.
    const shape = o.shape && o.shape.map((d) => (d === undefined ? null : d));
    checkShapeBounds(`${where} output '${name}'`, o.dtype, shape);
    return { ...o, name, shape };
  });
}

/** The inferred type of a constant tensor (with contents when small and integer). */
export function tensorInfo(name: string, t: Tensor): InferredValue {
  const info: InferredValue = { name, dtype: t.dtype, shape: [...t.dims] };
  if (t.dims.length <= 1 && t.data.length <= 64) {
    if (t.dtype === 'int64' || t.dtype === 'int32') info.value = toNumbers(t);
    else if (t.dtype === 'float32' || t.dtype === 'float64') info.floats = toNumbers(t);
  }
  return info;
}

/** Options of {@link inferShapes}. */
export interface InferOptions {
  /**
   * 'unknown' (the default): a node without a shape rule (a contrib op, a model-local
   * function, an op this project has no rule for), or one that reads a value of unknown
   * type, takes its outputs' types from the graph's value_info and typed outputs, or
   * leaves them unknown; ONNX Runtime, not this project, decides whether it runs.
   * 'error': such a node is a ModelError naming it (for graphs this project must
   * differentiate or rewrite op by op).
   */
  unknownOps?: 'unknown' | 'error';
}

/** What {@link inferShapesDetailed} returns. */
export interface InferResult {
  /** Every value whose type is known, by name (inputs, initializers, node outputs). */
  values: Map<string, InferredValue>;
  /**
   * Node outputs left unknown, each with the node where knowledge stopped: the first
   * node without a rule on the path to it.
   */
  unknown: { value: string; node: Node }[];
}

/**
 * Infers every value's type in a graph, in topological order.
 * @param graph - the graph
 * @param opset - ai.onnx opset
 * @param opts - what to do at nodes without a shape rule (default: leave unknown)
 * @returns a map from value name to inferred type (inputs, initializers and node outputs);
 *   values after a node without a rule are absent unless the graph declares them
 * @example
 * const types = inferShapes(model.graph, onnxOpset(model));
 */
export function inferShapes(
  graph: Graph,
  opset: number,
  opts: InferOptions = {},
): Map<string, InferredValue> {
  return inferShapesDetailed(graph, opset, opts).values;
}

/**
 * {@link inferShapes}, also listing the values it could not type and why.
 * @param graph - the graph
 * @param opset - ai.onnx opset
 * @param opts - what to do at nodes without a shape rule
 */
export function inferShapesDetailed(
  graph: Graph,
  opset: number,
  opts: InferOptions = {},
): InferResult {
  const known = new Map<string, InferredValue>();
  for (const v of graph.inputs) known.set(v.name, { ...v });
  for (const [name, t] of graph.initializers) known.set(name, tensorInfo(name, t));
  // Declared types (value_info and typed graph outputs) stand in where no rule applies.
  const declared = new Map<string, ValueInfo>(graph.valueInfo);
  for (const o of graph.outputs) if (o.shape) declared.set(o.name, o);
  const lenient = (opts.unknownOps ?? 'unknown') === 'unknown';
  // Why a value is unknown: the first rule-less node upstream of it.
  const cause = new Map<string, Node>();
  const unknown: InferResult['unknown'] = [];
  for (const node of topoSort(graph)) {
    const missing = node.inputs.find((i) => i !== '' && !known.has(i));
    if (lenient && (!hasShapeRule(node) || missing !== undefined)) {
      const why = (missing !== undefined && cause.get(missing)) || node;
      for (const o of node.outputs) {
        if (!o) continue;
        const d = declared.get(o);
        if (d) {
          checkShapeBounds(`node '${node.name}' (${node.opType}) output '${o}'`, d.dtype, d.shape);
          known.set(o, { ...d, name: o, shape: d.shape && [...d.shape] });
        } else {
          cause.set(o, why);
          unknown.push({ value: o, node: why });
        }
      }
      continue;
    }
    const outs = inferNode(node, (n) => known.get(n), opset);
    node.outputs.forEach((o, i) => {
      if (o && outs[i]) known.set(o, outs[i]);
    });
  }
  return { values: known, unknown };
}

// ---------------------------------------------------------------------------------------
// Helpers for rules

/**
 * A dim with its symbols bound: symbolic dims are products written `N` or `N*50`
 * (symbols, then an integer coefficient), so `N*50` with N = 2 is 100. A symbol not in
 * `symbols` takes `fallback` when given, else the dim stays as it is.
 * @param d - the dim
 * @param symbols - sizes by symbol
 * @param fallback - size of any other symbol
 * @example
 * bindDim('N*4', { N: 3 }); // 12
 */
export function bindDim(d: Dim, symbols: Record<string, number>, fallback?: number): Dim {
  if (typeof d !== 'string') return d;
  let v = 1;
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) v *= Number(f);
    else if (symbols[f] !== undefined) v *= symbols[f];
    else if (fallback !== undefined) v *= fallback;
    else return d;
  }
  return v;
}

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
