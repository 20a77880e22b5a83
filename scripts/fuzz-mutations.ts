/**
 * Mutations of ONNX files for the fuzz harness (scripts/fuzz.ts). Each case starts from a
 * committed fixture and applies one to three mutations drawn from a seeded Rng: blind
 * byte-level ones (flips, truncations, insertions) and structure-aware ones that decode
 * the protobuf, change one field where bugs hide (dims, raw data, ops, opsets, external
 * data, shape inputs, names, attributes) and encode it again.
 */
import onnxProto from 'onnx-proto';
import type { Rng } from '../src/util/rng.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type ITensorProto = onnxProto.onnx.ITensorProto;

/** A side file of a case, written next to the model before it is read. */
export type SideFile =
  | { kind: 'file'; bytes: Uint8Array }
  | { kind: 'fifo' }
  | { kind: 'dir' }
  | { kind: 'link'; target: string };

/** One fuzz case: the model bytes and the files beside it, by location. */
export interface FuzzInput {
  bytes: Uint8Array;
  files: Map<string, SideFile>;
  /** The mutations applied, for the report. */
  steps: string[];
}

/** Sizes that break code which trusts declared numbers. */
const INTERESTING = [
  0,
  1,
  2,
  -1,
  -2,
  3,
  64,
  65,
  255,
  2 ** 16,
  2 ** 26,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 40,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
];

/** Op types to swap in: ones with rules, ones without, contrib ops and nonsense. */
const OPS = [
  'Relu',
  'Add',
  'MatMul',
  'Gemm',
  'Conv',
  'Reshape',
  'Expand',
  'ConstantOfShape',
  'Transpose',
  'Concat',
  'Slice',
  'Gather',
  'Resize',
  'Einsum',
  'GroupNormalization',
  'HardSwish',
  'Split',
  'Squeeze',
  'Unsqueeze',
  'ReduceMean',
  'Tile',
  'Range',
  'Pad',
  'TopK',
  'NonZero',
  'If',
  'Loop',
  'Identity',
  'Shape',
  'Softmax',
  'LayerNormalization',
  'Flatten',
  'FastGelu',
  'NoSuchOp',
  '',
];

const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'custom', 'ai.onnx.ml', 'nonexistent.domain'];

const OPSETS = [-1, 0, 1, 7, 9, 10, 11, 13, 17, 18, 21, 22, 99, 2 ** 31, 2 ** 40];

function pick<T>(rng: Rng, a: readonly T[]): T {
  return a[rng.int(a.length)]!;
}

/** A small Long-like for protobufjs int64 fields beyond 2^53 or negative. */
function long(v: number): number {
  if (Number.isSafeInteger(v) && v >= 0) return v;
  const b = BigInt.asUintN(64, BigInt(Math.trunc(v)));
  return {
    low: Number(b & 0xffffffffn) | 0,
    high: Number(b >> 32n) | 0,
    unsigned: false,
  } as unknown as number;
}

function interesting(rng: Rng): number {
  return rng.uniform() < 0.8 ? pick(rng, INTERESTING) : rng.int(1 << 20);
}

/** Every graph of the model (the main graph and subgraphs in attributes). */
function graphs(m: ModelProto): IGraphProto[] {
  const out: IGraphProto[] = [];
  const visit = (g: IGraphProto | null | undefined) => {
    if (!g) return;
    out.push(g);
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) visit(a.g);
  };
  visit(m.graph);
  return out;
}

function tensorBytes(t: ITensorProto): Uint8Array {
  return t.rawData && t.rawData.length ? t.rawData : new Uint8Array(0);
}

// ---------------------------------------------------------------------------------------
// Byte-level mutations

function flip(rng: Rng, input: FuzzInput): string {
  const b = Uint8Array.from(input.bytes);
  const k = 1 + rng.int(8);
  for (let i = 0; i < k && b.length; i++) b[rng.int(b.length)]! ^= 1 + rng.int(255);
  input.bytes = b;
  return `flip ${k} bytes`;
}

function truncate(rng: Rng, input: FuzzInput): string {
  const at = rng.int(input.bytes.length + 1);
  input.bytes = input.bytes.slice(0, at);
  return `truncate at ${at}`;
}

function insert(rng: Rng, input: FuzzInput): string {
  const at = rng.int(input.bytes.length + 1);
  const n = 1 + rng.int(16);
  const ins = Uint8Array.from({ length: n }, () => rng.int(256));
  const b = new Uint8Array(input.bytes.length + n);
  b.set(input.bytes.subarray(0, at));
  b.set(ins, at);
  b.set(input.bytes.subarray(at), at + n);
  input.bytes = b;
  return `insert ${n} bytes at ${at}`;
}

// ---------------------------------------------------------------------------------------
// Structure-aware mutations (on a decoded ModelProto)

type ProtoMutation = (rng: Rng, m: ModelProto, input: FuzzInput) => string | undefined;

/** A dim of an input, output or value_info set to an interesting size, or a rank changed. */
const mutateValueDims: ProtoMutation = (rng, m) => {
  const g = m.graph!;
  const infos = [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])];
  const v = infos.length ? pick(rng, infos) : undefined;
  const shape = v?.type?.tensorType?.shape;
  if (!v || !shape) return undefined;
  const dims = shape.dim ?? (shape.dim = []);
  const r = rng.uniform();
  if (r < 0.6 && dims.length) {
    const k = rng.int(dims.length);
    dims[k] = onnx.TensorShapeProto.Dimension.create({ dimValue: long(interesting(rng)) });
    return `dim ${k} of '${v.name}' = ${String(dims[k].dimValue)}`;
  }
  if (r < 0.8) {
    const n = pick(rng, [65, 100, 1000, 1 + rng.int(8)]);
    for (let i = 0; i < n; i++) dims.push(onnx.TensorShapeProto.Dimension.create({ dimValue: 1 }));
    return `rank of '${v.name}' + ${n}`;
  }
  dims.splice(rng.int(dims.length + 1), 1);
  return `drop a dim of '${v.name}'`;
};

/** An initializer's dims changed (rank, sizes) without touching its data. */
const mutateTensorDims: ProtoMutation = (rng, m) => {
  const inits = m.graph?.initializer ?? [];
  if (!inits.length) return undefined;
  const t = pick(rng, inits);
  const dims = (t.dims ?? []).slice();
  if (rng.uniform() < 0.5 && dims.length) dims[rng.int(dims.length)] = long(interesting(rng));
  else dims.push(long(interesting(rng)));
  t.dims = dims;
  return `dims of tensor '${t.name}'`;
};

/** Raw data cut, grown, re-typed, or moved to a typed field. */
const mutateRawData: ProtoMutation = (rng, m) => {
  const inits = m.graph?.initializer ?? [];
  if (!inits.length) return undefined;
  const t = pick(rng, inits);
  const raw = tensorBytes(t);
  const r = rng.uniform();
  if (r < 0.3) t.rawData = raw.slice(0, rng.int(raw.length + 1));
  else if (r < 0.5)
    t.rawData = Uint8Array.from([...raw, ...new Array<number>(1 + rng.int(64)).fill(7)]);
  else if (r < 0.7) t.dataType = pick(rng, [0, 1, 2, 6, 7, 8, 9, 10, 11, 14, 16, 17, 99]);
  else if (r < 0.85) {
    t.rawData = new Uint8Array(0);
    t.floatData = Array.from({ length: rng.int(40) }, () => rng.normal());
  } else {
    t.rawData = new Uint8Array(0);
    t.int64Data = Array.from({ length: rng.int(8) }, () => long(interesting(rng)));
  }
  return `raw data of tensor '${t.name}'`;
};

/** A node's op type, domain, inputs or outputs changed, or a node dropped or repeated. */
const mutateOps: ProtoMutation = (rng, m) => {
  const g = pick(rng, graphs(m));
  const nodes = g.node ?? [];
  if (!nodes.length) return undefined;
  const i = rng.int(nodes.length);
  const n = nodes[i]!;
  const r = rng.uniform();
  if (r < 0.35) {
    n.opType = pick(rng, OPS);
    return `node ${i} op = '${n.opType}'`;
  }
  if (r < 0.5) {
    n.domain = pick(rng, DOMAINS);
    return `node ${i} domain = '${n.domain}'`;
  }
  if (r < 0.65 && (n.input ?? []).length) {
    const k = rng.int(n.input!.length);
    n.input![k] = pick(rng, [
      '',
      'nonexistent',
      ...(n.output ?? []),
      ...nodes.flatMap((x) => x.output ?? []),
    ]);
    return `node ${i} input ${k} = '${n.input![k]}'`;
  }
  if (r < 0.75) {
    n.input = [...(n.input ?? []), ...(n.input ?? [])];
    return `node ${i} inputs doubled`;
  }
  if (r < 0.85) {
    nodes.splice(i, 1);
    return `node ${i} dropped`;
  }
  if (r < 0.93) {
    nodes.splice(
      rng.int(nodes.length + 1),
      0,
      onnx.NodeProto.decode(onnx.NodeProto.encode(n).finish()),
    );
    return `node ${i} repeated`;
  }
  const j = rng.int(nodes.length);
  [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
  return `nodes ${i} and ${j} swapped`;
};

/** An attribute's ints set to interesting values, its type changed, or a graph attached. */
const mutateAttrs: ProtoMutation = (rng, m) => {
  const nodes = (m.graph?.node ?? []).filter((n) => (n.attribute ?? []).length);
  if (!nodes.length) return undefined;
  const n = pick(rng, nodes);
  const a = pick(rng, n.attribute!);
  const r = rng.uniform();
  if (r < 0.4) {
    a.ints = Array.from({ length: pick(rng, [0, 1, 2, 4, 70]) }, () => long(interesting(rng)));
    a.type = onnx.AttributeProto.AttributeType.INTS;
  } else if (r < 0.6) {
    a.i = long(interesting(rng));
    a.type = onnx.AttributeProto.AttributeType.INT;
  } else if (r < 0.8) a.type = rng.int(20);
  else {
    // A copy of the node as the subgraph's only node (a deep copy: the node holds `a`).
    const copy = onnx.NodeProto.decode(onnx.NodeProto.encode(n).finish());
    a.type = onnx.AttributeProto.AttributeType.GRAPH;
    a.g = onnx.GraphProto.create({ name: 'sub', node: [copy] });
  }
  return `attribute '${a.name}' of node '${n.name}'`;
};

/** The ai.onnx opset set to an interesting version, duplicated or dropped. */
const mutateOpsets: ProtoMutation = (rng, m) => {
  const r = rng.uniform();
  if (r < 0.7 && m.opsetImport.length) {
    const o = pick(rng, m.opsetImport);
    o.version = long(pick(rng, OPSETS));
    return `opset '${o.domain}' = ${String(o.version)}`;
  }
  if (r < 0.85) {
    m.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: '', version: pick(rng, OPSETS) }));
    return 'ai.onnx opset imported twice';
  }
  m.opsetImport = [];
  return 'no opset import';
};

/** An initializer moved to external data, at a location good, hostile or special. */
const mutateExternal: ProtoMutation = (rng, m, input) => {
  const inits = (m.graph?.initializer ?? []).filter((t) => tensorBytes(t).length);
  if (!inits.length) return undefined;
  const t = pick(rng, inits);
  const raw = tensorBytes(t);
  const kind = pick(rng, [
    'good',
    'good',
    'offset',
    'fifo',
    'dir',
    'escape',
    'abs',
    'link',
    'missing',
    'short',
  ]);
  let location = `w${rng.int(4)}.bin`;
  let offset = 0;
  let length = raw.length;
  switch (kind) {
    case 'good':
      input.files.set(location, { kind: 'file', bytes: raw });
      break;
    case 'offset': {
      offset = pick(rng, [16, 2 ** 31, 2 ** 40, -8]);
      length = pick(rng, [raw.length, 2 ** 32, 0]);
      input.files.set(location, { kind: 'file', bytes: raw });
      break;
    }
    case 'fifo':
      input.files.set(location, { kind: 'fifo' });
      break;
    case 'dir':
      input.files.set(location, { kind: 'dir' });
      break;
    case 'escape':
      location = `../${location}`;
      break;
    case 'abs':
      location = '/etc/hostname';
      break;
    case 'link':
      input.files.set(location, { kind: 'link', target: '/etc/hostname' });
      break;
    case 'missing':
      location = 'missing.bin';
      break;
    case 'short':
      input.files.set(location, { kind: 'file', bytes: raw.slice(0, raw.length >> 1) });
      break;
  }
  t.rawData = new Uint8Array(0);
  t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  t.externalData = [
    { key: 'location', value: location },
    { key: 'offset', value: String(offset) },
    { key: 'length', value: String(length) },
  ];
  return `tensor '${t.name}' external (${kind} '${location}')`;
};

/**
 * The crash pattern of Reshape / Expand / ConstantOfShape / Tile: the shape (or repeats)
 * input replaced by a new graph input declared int64[N] with an interesting N.
 */
const mutateShapeInput: ProtoMutation = (rng, m) => {
  const g = m.graph!;
  const nodes = g.node ?? [];
  const targets = nodes.filter((n) =>
    ['Reshape', 'Expand', 'ConstantOfShape', 'Tile', 'Range', 'Slice', 'Pad'].includes(
      n.opType ?? '',
    ),
  );
  let node = targets.length ? pick(rng, targets) : undefined;
  if (!node || rng.uniform() < 0.3) {
    // Add one: Reshape / Expand / ConstantOfShape fed from the graph's first input.
    const op = pick(rng, ['Reshape', 'Expand', 'ConstantOfShape']);
    const x = g.input?.[0]?.name ?? 'x';
    node = onnx.NodeProto.create({
      name: `fuzz_${op}`,
      opType: op,
      input: op === 'ConstantOfShape' ? ['fuzz_shape'] : [x, 'fuzz_shape'],
      output: ['fuzz_out'],
    });
    nodes.push(node);
    g.output = [...(g.output ?? []), onnx.ValueInfoProto.create({ name: 'fuzz_out' })];
  }
  const idx = node.opType === 'ConstantOfShape' || node.opType === 'Range' ? 0 : 1;
  const n = pick(rng, [2 ** 26, 2 ** 31 - 1, 2 ** 32, 2 ** 40, 65, 1000, 3]);
  const name = `fuzz_shape_${rng.int(1000)}`;
  const input = [...(node.input ?? [])];
  input[idx] = name;
  node.input = input;
  g.input = [
    ...(g.input ?? []),
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: 7, shape: { dim: [{ dimValue: long(n) }] } } },
    }),
  ];
  return `${node.opType} '${node.name}' shape input int64[${n}]`;
};

/** An initializer name repeated, or an input named like an initializer. */
const mutateNames: ProtoMutation = (rng, m) => {
  const g = m.graph!;
  const inits = g.initializer ?? [];
  if (rng.uniform() < 0.5 && inits.length) {
    const t = pick(rng, inits);
    inits.push(onnx.TensorProto.decode(onnx.TensorProto.encode(t).finish()));
    return `initializer '${t.name}' defined twice`;
  }
  const inputs = g.input ?? [];
  if (inputs.length) {
    const v = pick(rng, inputs);
    inputs.push(onnx.ValueInfoProto.decode(onnx.ValueInfoProto.encode(v).finish()));
    return 'graph input repeated';
  }
  return undefined;
};

const STRUCTURAL: [string, ProtoMutation, number][] = [
  ['dims', mutateValueDims, 3],
  ['tensor-dims', mutateTensorDims, 2],
  ['raw-data', mutateRawData, 2],
  ['ops', mutateOps, 3],
  ['attrs', mutateAttrs, 2],
  ['opsets', mutateOpsets, 1],
  ['external', mutateExternal, 2],
  ['shape-input', mutateShapeInput, 2],
  ['names', mutateNames, 1],
];
const BYTES: [string, (rng: Rng, input: FuzzInput) => string, number][] = [
  ['flip', flip, 3],
  ['truncate', truncate, 1],
  ['insert', insert, 1],
];

function weighted<T>(rng: Rng, items: [string, T, number][]): [string, T] {
  const total = items.reduce((a, [, , w]) => a + w, 0);
  let x = rng.uniform() * total;
  for (const [name, f, w] of items) {
    if ((x -= w) < 0) return [name, f];
  }
  const last = items[items.length - 1]!;
  return [last[0], last[1]];
}

/**
 * Applies one to three mutations to a fixture. Structural ones decode the current bytes
 * (skipped, and counted as such, if they no longer decode); byte-level ones always apply.
 * @param rng - the case's generator
 * @param base - the fixture's bytes and side files
 * @returns the mutated case
 */
export function mutate(
  rng: Rng,
  base: { bytes: Uint8Array; files: Map<string, SideFile> },
): FuzzInput {
  const input: FuzzInput = { bytes: base.bytes, files: new Map(base.files), steps: [] };
  const count = 1 + rng.int(3);
  for (let k = 0; k < count; k++) {
    if (rng.uniform() < 0.3) {
      const [name, f] = weighted(rng, BYTES);
      input.steps.push(`${name}: ${f(rng, input)}`);
      continue;
    }
    const [name, f] = weighted(rng, STRUCTURAL);
    let m: ModelProto;
    try {
      m = onnx.ModelProto.decode(input.bytes);
    } catch {
      input.steps.push(`${name}: skipped (bytes no longer decode)`);
      continue;
    }
    if (!m.graph) {
      input.steps.push(`${name}: skipped (no graph)`);
      continue;
    }
    const what = f(rng, m, input);
    if (what === undefined) {
      input.steps.push(`${name}: nothing to mutate`);
      continue;
    }
    try {
      input.bytes = onnx.ModelProto.encode(m).finish();
      input.steps.push(`${name}: ${what}`);
    } catch (err) {
      input.steps.push(`${name}: ${what} (not encodable: ${(err as Error).message})`);
    }
  }
  return input;
}
