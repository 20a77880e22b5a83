import { ModelError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import type { DType } from './dtype.js';
import {
  type AttrValue,
  DEFAULT_OPSET,
  type Dim,
  emptyGraph,
  type Graph,
  type Model,
  makeModel,
  type Node,
} from './ir.js';
import { type InferredValue, inferNode, inferShapesDetailed, tensorInfo } from './shapes.js';
import { makeTensor, numel, type Tensor } from './tensor.js';

/** A value of the graph being built, with its inferred dtype and shape. */
export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Dim[] | null;
}

/** How a parameter is initialised. Every random draw uses the builder's seeded Rng. */
export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  /** N(mean, std²). */
  | { kind: 'normal'; std: number; mean?: number }
  /** N(0, std²) redrawn outside ±2 std (timm's trunc_normal_ with std 0.02). */
  | { kind: 'truncNormal'; std: number }
  /** U(-bound, bound); PyTorch's Linear/Conv default is bound = 1/sqrt(fan_in). */
  | { kind: 'uniform'; bound: number }
  | { kind: 'tensor'; tensor: Tensor };

/** An attribute given in plain JavaScript; the builder picks the AttrValue type. */
export type AttrInput = number | number[] | string | string[] | Tensor | AttrValue;

// Attributes whose numbers are floats in the ONNX spec (all others are ints).
const FLOAT_ATTRS = new Set([
  'alpha',
  'beta',
  'gamma',
  'epsilon',
  'momentum',
  'ratio',
  'bias',
  'lambd',
  'min',
  'max',
  'value_float',
  'value_floats',
  'scale',
  'seed',
  'mean',
  'high',
  'low',
]);

function toAttr(name: string, v: AttrInput): AttrValue {
  if (typeof v === 'number')
    return FLOAT_ATTRS.has(name) ? { type: 'float', value: v } : { type: 'int', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') return { type: 'strings', value: v as string[] };
    return FLOAT_ATTRS.has(name)
      ? { type: 'floats', value: v as number[] }
      : { type: 'ints', value: v as number[] };
  }
  if ('type' in v && 'value' in v) return v;
  return { type: 'tensor', value: v };
}

/** What {@link GraphBuilder.build} returns. */
export interface BuiltModel {
  model: Model;
  /** Trainable parameters (initializer names) in creation order. */
  params: string[];
  /** Non-trainable state updated by training (batch-norm running statistics). */
  buffers: string[];
}

/**
 * Builds ONNX graphs the way one writes a PyTorch module: named parameters under
 * scopes, one method per op, shapes inferred as nodes are added.
 *
 * @example
 * const b = new GraphBuilder({ seed: 0 });
 * const x = b.input('x', 'float32', ['N', 4]);
 * const w = b.scope('fc', () => b.param('weight', [3, 4], { kind: 'uniform', bound: 0.5 }));
 * b.output(b.gemm(x, w, null, { transB: 1 }), 'y');
 * const { model, params } = b.build(); // params: ['fc.weight']
 */
export class GraphBuilder {
  readonly graph: Graph;
  readonly opset: number;
  readonly rng: Rng;
  private readonly infos = new Map<string, InferredValue>();
  private readonly used = new Set<string>();
  private readonly prefix: string[] = [];
  private readonly paramNames: string[] = [];
  private readonly bufferNames: string[] = [];
  private readonly constCache = new Map<string, Value>();
  /** For values of an existing graph whose type is unknown: the rule-less node before them. */
  private readonly unknownCause = new Map<string, Node>();

  constructor(opts: { name?: string; opset?: number; seed?: number; graph?: Graph } = {}) {
    this.opset = opts.opset ?? DEFAULT_OPSET;
    this.rng = new Rng(opts.seed ?? 0);
    this.graph = opts.graph ?? emptyGraph(opts.name ?? 'graph');
    if (opts.graph) {
      const { values, unknown } = inferShapesDetailed(opts.graph, this.opset);
      for (const [k, v] of values) this.infos.set(k, v);
      for (const u of unknown) {
        this.unknownCause.set(u.value, u.node);
        this.used.add(u.value);
      }
      for (const k of this.infos.keys()) this.used.add(k);
      for (const n of opts.graph.nodes) this.used.add(n.name);
    }
  }

  /** The inferred type of an existing value. */
  value(name: string): Value {
    const info = this.infos.get(name);
    if (info) return info;
    const cause = this.unknownCause.get(name);
    if (cause)
      throw new ModelError(
        `graph '${this.graph.name}': the type of '${name}' is unknown: it comes after node '${cause.name}' (${cause.domain ? `${cause.domain}.` : ''}${cause.opType}), which has no shape rule; measure it first with measureShapes (ONNX Runtime)`,
      );
    throw new ModelError(`graph '${this.graph.name}' has no value named '${name}'`);
  }

  /** The known contents of a small integer value (shapes), if any. */
  knownInts(v: Value): Dim[] | undefined {
    return this.infos.get(v.name)?.value;
  }

  /** A name not used yet in the graph, derived from `base`. */
  uniqueName(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /** Runs `fn` with `name` appended to the parameter-name prefix (`blocks.0` then `attn`). */
  scope<T>(name: string | number, fn: () => T): T {
    this.prefix.push(String(name));
    try {
      return fn();
    } finally {
      this.prefix.pop();
    }
  }

  /** The current scope's full name for a local name. */
  qualify(local: string): string {
    return [...this.prefix, local].join('.');
  }

  /** Declares a graph input. */
  input(name: string, dtype: DType, shape: Dim[]): Value {
    if (this.used.has(name)) throw new ModelError(`duplicate value name '${name}'`);
    this.used.add(name);
    const info = { name, dtype, shape: [...shape] };
    this.graph.inputs.push(info);
    this.infos.set(name, info);
    return info;
  }

  /**
   * Declares a trainable parameter (an initializer) named by the current scope.
   * @param local - local name, e.g. 'weight'
   * @param dims - shape
   * @param init - initialiser; random ones draw from a stream forked by the full name,
   *   so adding a parameter never changes the values of the others
   * @param opts.buffer - a non-trainable state tensor (running statistics)
   */
  param(local: string, dims: number[], init: Init, opts: { buffer?: boolean } = {}): Value {
    const name = this.qualify(local);
    if (this.used.has(name)) throw new ModelError(`duplicate parameter name '${name}'`);
    const t = this.initTensor(name, dims, init);
    this.used.add(name);
    this.graph.initializers.set(name, t);
    this.infos.set(name, tensorInfo(name, t));
    (opts.buffer ? this.bufferNames : this.paramNames).push(name);
    return this.infos.get(name)!;
  }

  private initTensor(name: string, dims: number[], init: Init): Tensor {
    const n = numel(dims);
    const data = new Float32Array(n);
    const rng = this.rng.fork(name);
    switch (init.kind) {
      case 'zeros':
        break;
      case 'ones':
        data.fill(1);
        break;
      case 'constant':
        data.fill(init.value);
        break;
      case 'normal':
        rng.fillNormal(data, init.mean ?? 0, init.std);
        break;
      case 'truncNormal':
        for (let i = 0; i < n; i++) {
          let v: number;
          do v = rng.normal();
          while (Math.abs(v) > 2);
          data[i] = v * init.std;
        }
        break;
      case 'uniform':
        rng.fillUniform(data, -init.bound, init.bound);
        break;
      case 'tensor':
        if (init.tensor.dims.join() !== dims.join()) {
          throw new ModelError(
            `parameter '${name}': tensor has shape [${init.tensor.dims}], expected [${dims}]`,
          );
        }
        return init.tensor;
    }
    return { dtype: 'float32', dims: [...dims], data };
  }

  /** A constant initializer (deduplicated by content for small tensors). */
  constant(t: Tensor, hint = 'const'): Value {
    const key =
      t.data.length <= 16
        ? `${t.dtype}|${t.dims}|${Array.from(t.data as ArrayLike<number>).join(',')}`
        : '';
    if (key) {
      const hit = this.constCache.get(key);
      if (hit) return hit;
    }
    const name = this.uniqueName(hint);
    this.graph.initializers.set(name, t);
    const info = tensorInfo(name, t);
    this.infos.set(name, info);
    if (key) this.constCache.set(key, info);
    return info;
  }

  /** A 1-D int64 constant (axes, shapes). */
  ints(values: number[]): Value {
    return this.constant(makeTensor('int64', [values.length], values), 'ints');
  }

  /** A scalar constant of the given dtype (float32 by default). */
  scalar(v: number, dtype: DType = 'float32'): Value {
    return this.constant(makeTensor(dtype, [], [v]), 'scalar');
  }

  /**
   * Adds a node and returns its outputs. Inputs may be null for omitted optional inputs.
   * @param opType - ONNX op type (ai.onnx domain)
   * @param inputs - input values
   * @param attrs - attributes in plain JavaScript
   * @param opts.outputs - number of outputs (default 1)
   * @param opts.name - node name hint
   */
  op(
    opType: string,
    inputs: (Value | null)[],
    attrs: Record<string, AttrInput | undefined> = {},
    opts: { outputs?: number; name?: string } = {},
  ): Value[] {
    const nodeName = this.uniqueName(
      opts.name ?? (this.prefix.length ? `${this.qualify(opType)}` : opType),
    );
    const nOut = opts.outputs ?? 1;
    const outputs = Array.from({ length: nOut }, (_, i) => this.uniqueName(`${nodeName}_out${i}`));
    const node: Node = {
      name: nodeName,
      opType,
      domain: '',
      inputs: inputs.map((v) => (v ? v.name : '')),
      outputs,
      attrs: {},
    };
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) node.attrs[k] = toAttr(k, v);
    const infos = inferNode(node, (n) => this.infos.get(n), this.opset);
    this.graph.nodes.push(node);
    return outputs.map((o, i) => {
      const info = { ...infos[i]!, name: o };
      this.infos.set(o, info);
      return info;
    });
  }

  /** Adds a single-output node. */
  op1(
    opType: string,
    inputs: (Value | null)[],
    attrs: Record<string, AttrInput | undefined> = {},
    name?: string,
  ): Value {
    return this.op(opType, inputs, attrs, { name })[0]!;
  }

  /** Marks a value as a graph output, renaming through Identity when `name` differs. */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name && name !== v.name) {
      if (this.used.has(name)) throw new ModelError(`duplicate value name '${name}'`);
      const node: Node = {
        name: this.uniqueName(`${name}_identity`),
        opType: 'Identity',
        domain: '',
        inputs: [v.name],
        outputs: [name],
        attrs: {},
      };
      this.used.add(name);
      this.graph.nodes.push(node);
      out = { name, dtype: v.dtype, shape: v.shape };
      this.infos.set(name, out);
    }
    this.graph.outputs.push({
      name: out.name,
      dtype: out.dtype,
      shape: out.shape && [...out.shape],
    });
    return out;
  }

  /** Finishes the graph as a model. */
  build(): BuiltModel {
    return {
      model: makeModel(this.graph, this.opset),
      params: [...this.paramNames],
      buffers: [...this.bufferNames],
    };
  }

  // --- ops --------------------------------------------------------------------------

  add(a: Value, b: Value): Value {
    return this.op1('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op1('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op1('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op1('Div', [a, b]);
  }
  neg(a: Value): Value {
    return this.op1('Neg', [a]);
  }
  matmul(a: Value, b: Value): Value {
    return this.op1('MatMul', [a, b]);
  }
  /** Gemm: alpha * A' B' + beta * C. */
  gemm(
    a: Value,
    b: Value,
    c: Value | null,
    attrs: { transA?: number; transB?: number; alpha?: number; beta?: number } = {},
  ): Value {
    return this.op1('Gemm', c ? [a, b, c] : [a, b], attrs);
  }
  relu(x: Value): Value {
    return this.op1('Relu', [x]);
  }
  sigmoid(x: Value): Value {
    return this.op1('Sigmoid', [x]);
  }
  tanh(x: Value): Value {
    return this.op1('Tanh', [x]);
  }
  exp(x: Value): Value {
    return this.op1('Exp', [x]);
  }
  log(x: Value): Value {
    return this.op1('Log', [x]);
  }
  sqrt(x: Value): Value {
    return this.op1('Sqrt', [x]);
  }
  abs(x: Value): Value {
    return this.op1('Abs', [x]);
  }
  pow(x: Value, p: number): Value {
    return this.op1('Pow', [x, this.scalar(p, x.dtype)]);
  }
  /** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's default nn.GELU. */
  gelu(x: Value): Value {
    const e = this.op1('Erf', [this.mul(x, this.scalar(Math.SQRT1_2, x.dtype))]);
    return this.mul(this.mul(x, this.add(e, this.scalar(1, x.dtype))), this.scalar(0.5, x.dtype));
  }
  softmax(x: Value, axis = -1): Value {
    return this.op1('Softmax', [x], { axis });
  }
  logSoftmax(x: Value, axis = -1): Value {
    return this.op1('LogSoftmax', [x], { axis });
  }
  reshape(x: Value, shape: number[]): Value {
    return this.op1('Reshape', [x, this.ints(shape)]);
  }
  flatten(x: Value, axis = 1): Value {
    return this.op1('Flatten', [x], { axis });
  }
  transpose(x: Value, perm: number[]): Value {
    return this.op1('Transpose', [x], { perm });
  }
  concat(xs: Value[], axis: number): Value {
    return this.op1('Concat', xs, { axis });
  }
  slice(x: Value, starts: number[], ends: number[], axes: number[], steps?: number[]): Value {
    const ins = [x, this.ints(starts), this.ints(ends), this.ints(axes)];
    if (steps) ins.push(this.ints(steps));
    return this.op1('Slice', ins);
  }
  gather(x: Value, indices: Value, axis = 0): Value {
    return this.op1('Gather', [x, indices], { axis });
  }
  squeeze(x: Value, axes: number[]): Value {
    return this.op1('Squeeze', [x, this.ints(axes)]);
  }
  unsqueeze(x: Value, axes: number[]): Value {
    return this.op1('Unsqueeze', [x, this.ints(axes)]);
  }
  reduceSum(x: Value, axes: number[], keepdims = true): Value {
    return this.op1('ReduceSum', [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMean(x: Value, axes: number[], keepdims = true): Value {
    return this.op1('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
  }
  /** Mean over every element (a scalar). */
  mean(x: Value): Value {
    return this.op1('ReduceMean', [x], { keepdims: 0 });
  }
  layerNorm(x: Value, scale: Value, bias: Value | null, epsilon = 1e-5, axis = -1): Value {
    return this.op1('LayerNormalization', bias ? [x, scale, bias] : [x, scale], { axis, epsilon });
  }
  conv(
    x: Value,
    w: Value,
    b: Value | null,
    attrs: { strides?: number[]; pads?: number[]; dilations?: number[]; group?: number } = {},
  ): Value {
    return this.op1('Conv', b ? [x, w, b] : [x, w], attrs);
  }
}
