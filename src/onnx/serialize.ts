/**
 * Reading and writing `.onnx` files: ModelProto (via the protobufjs binding `onnx-proto`)
 * to and from the IR of `ir.ts`. Every failure on a malformed file is a ModelError naming
 * the file (and the tensor, node or attribute at fault); no protobufjs error escapes.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelError, UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { allocArray, DTYPE_SIZE, dtypeFromCode, ONNX_DTYPE_CODE } from './dtype.js';
import type { AttrValue, Dim, Graph, Model, Node, ValueInfo } from './ir.js';
import { numel, type Tensor } from './tensor.js';
import { ensureNodeNames, validateGraph } from './validate.js';

const { onnx } = onnxProto;

/** An int64 field as protobufjs hands it over: a Long when `long` is installed, else a number. */
type LongLike =
  number | { low: number; high: number; unsigned?: boolean; toNumber(): number } | null | undefined;

/** An int64 field as a JS number (precision beyond 2^53 is lost; INT64_MAX becomes 2^63). */
function num(v: LongLike): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** An int64/uint64 field as an exact bigint. */
function big(v: LongLike, unsigned: boolean): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  const b = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned ? b : BigInt.asIntN(64, b);
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * A number for an int64 field. protobufjs writes an unsafe number by splitting its bits,
 * so 2^63 (what INT64_MAX becomes as a double, e.g. Slice's "to the end") would wrap to
 * INT64_MIN; out-of-range values are clamped instead, as Long.fromNumber does.
 */
function int64Field(v: number, what: () => string): number {
  if (Number.isSafeInteger(v)) return v;
  if (Number.isNaN(v)) throw new ModelError(`${what()}: ${v} is not an integer`);
  let b: bigint;
  if (v >= 2 ** 63) b = INT64_MAX;
  else if (v <= -(2 ** 63)) b = INT64_MIN;
  else b = BigInt(Math.trunc(v));
  const u = BigInt.asUintN(64, b);
  // A Long-like object; protobufjs's LongBits.from reads its low and high words.
  const long = { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
  return long as unknown as number;
}

interface DecodeContext {
  source: string;
  baseDir?: string;
  externalCache: Map<string, Uint8Array>;
  readExternal: (path: string) => Uint8Array;
}

/** Options of {@link decodeModel}. */
export interface DecodeOptions {
  /** File name (or any label) that starts every error message. */
  source: string;
  /** Folder of the model file, for tensors stored as external data. */
  baseDir?: string;
  /**
   * Reads an external-data file, given its absolute path, already checked to lie inside
   * baseDir. Default: read it if, symbolic links resolved, it is still inside baseDir.
   */
  readExternal?: (path: string) => Uint8Array;
}

/**
 * Decodes an ONNX model from bytes into the IR. Initializers listed among the graph
 * inputs (IR < 4) become initializers only; unnamed nodes are named `<opType>_<index>`
 * ({@link ensureNodeNames}); the graph is checked with {@link validateGraph}.
 * @param bytes - the .onnx file contents
 * @param opts - `source` for messages; `baseDir` (and optionally `readExternal`) for
 *   external data, which is refused without them
 * @example
 * const model = decodeModel(fs.readFileSync('m.onnx'), { source: 'm.onnx' });
 */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions): Model {
  const { source } = opts;
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelError(
      `${source}: not a valid ONNX file (corrupt or truncated protobuf: ${(err as Error).message})`,
      { cause: err },
    );
  }
  // Almost any byte string, the empty one included, decodes as some ModelProto.
  if (!proto.graph || (num(proto.irVersion as LongLike) === 0 && proto.opsetImport.length === 0)) {
    throw new ModelError(`${source}: not a valid ONNX model (no graph or no IR version/opset)`);
  }
  const ctx: DecodeContext = {
    source,
    baseDir: opts.baseDir,
    externalCache: new Map(),
    readExternal: opts.readExternal ?? ((p) => readInside(opts.baseDir ?? dirname(p), p)),
  };
  let graph: Graph;
  let model: Model;
  try {
    graph = decodeGraph(proto.graph as onnxProto.onnx.GraphProto, ctx);
    const metadata: Record<string, string> = {};
    for (const p of proto.metadataProps) metadata[p.key ?? ''] = p.value ?? '';
    model = {
      graph,
      opsetImports: proto.opsetImport.map((o) => ({
        domain: o.domain ?? '',
        version: num(o.version as LongLike),
      })),
      irVersion: num(proto.irVersion as LongLike),
      producerName: proto.producerName ?? '',
      producerVersion: proto.producerVersion ?? '',
      metadata,
    };
  } catch (err) {
    // Garbage that happens to parse as protobuf must still fail as a ModelError.
    if (err instanceof ModelError) throw err;
    throw new ModelError(`${source}: not a valid ONNX model (${(err as Error).message})`, {
      cause: err,
    });
  }
  ensureNodeNames(graph);
  validateGraph(graph, { source });
  return model;
}

/**
 * Reads a .onnx file (asynchronously). External data is read from the model's folder
 * only: a location that is absolute, climbs out with `..` or leads out through a
 * symbolic link is refused.
 * @param path - the .onnx file
 * @example
 * const model = await readModel('resnet.onnx');
 */
export async function readModel(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ModelError(`cannot read model file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return decodeModel(bytes, { source: path, baseDir: dirname(resolve(path)) });
}

/** Reads `path` after checking that, links resolved, it still lies inside `dir`. */
function readInside(dir: string, path: string): Uint8Array {
  const real = realpathSync(path);
  if (!isInside(realpathSync(dir), real))
    throw new Error(`it resolves to ${real}, outside the model's folder, through a link`);
  return readFileSync(real);
}

/** True when `path` is `dir` or lies below it (both absolute). */
function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function decodeValueInfo(v: onnxProto.onnx.IValueInfoProto): ValueInfo | undefined {
  const tt = v.type?.tensorType;
  if (!tt) return undefined;
  const dtype = dtypeFromCode(tt.elemType ?? 0);
  if (!dtype) return undefined;
  // `value` names the member of the dim's oneof that is set (dimValue, dimParam or none).
  const shape: Dim[] | null = tt.shape
    ? (tt.shape.dim ?? []).map((d) => {
        const which = (d as { value?: string }).value;
        if (which === 'dimParam') return d.dimParam ?? null;
        if (which === 'dimValue') return num(d.dimValue as LongLike);
        return null;
      })
    : null;
  return { name: v.name ?? '', dtype, shape };
}

function decodeGraph(g: onnxProto.onnx.IGraphProto, ctx: DecodeContext): Graph {
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) {
    initializers.set(t.name ?? '', decodeTensor(t, ctx, `tensor '${t.name ?? ''}'`));
  }
  const inputs: ValueInfo[] = [];
  for (const v of g.input ?? []) {
    if (initializers.has(v.name ?? '')) continue; // IR < 4 lists initializers as inputs
    const info = decodeValueInfo(v);
    if (!info)
      throw new ModelError(`${ctx.source}: graph input '${v.name}' has no supported tensor type`);
    inputs.push(info);
  }
  // An output without a (supported) tensor type is kept by name as float32 of unknown rank.
  const outputs: ValueInfo[] = (g.output ?? []).map(
    (v) => decodeValueInfo(v) ?? { name: v.name ?? '', dtype: 'float32', shape: null },
  );
  const valueInfo = new Map<string, ValueInfo>();
  for (const v of g.valueInfo ?? []) {
    const info = decodeValueInfo(v);
    if (info) valueInfo.set(info.name, info);
  }
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const label = n.name ? `node '${n.name}'` : `node #${i} (${n.opType})`;
    const attrs: Record<string, AttrValue> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a, ctx, label);
    return {
      // Empty names are filled in by ensureNodeNames once the whole graph is known.
      name: n.name ?? '',
      opType: n.opType ?? '',
      domain: n.domain === 'ai.onnx' ? '' : (n.domain ?? ''),
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs,
    };
  });
  return { name: g.name ?? 'graph', nodes, inputs, outputs, initializers, valueInfo };
}

/** The attribute's type; files from old exporters may leave it unset (0). */
function attrType(a: onnxProto.onnx.IAttributeProto): number {
  const T = onnx.AttributeProto.AttributeType;
  if (a.type) return a.type;
  if (a.ints?.length) return T.INTS;
  if (a.floats?.length) return T.FLOATS;
  if (a.strings?.length) return T.STRINGS;
  if (a.t) return T.TENSOR;
  if (a.g) return T.GRAPH;
  if (a.s?.length) return T.STRING;
  if (a.f) return T.FLOAT;
  return T.INT;
}

function decodeAttr(
  a: onnxProto.onnx.IAttributeProto,
  ctx: DecodeContext,
  node: string,
): AttrValue {
  const T = onnx.AttributeProto.AttributeType;
  const where = `${ctx.source}: ${node} attribute '${a.name}'`;
  const utf8 = new TextDecoder();
  switch (attrType(a)) {
    case T.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case T.INT:
      return { type: 'int', value: num(a.i as LongLike) };
    case T.STRING:
      return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case T.TENSOR:
      if (!a.t) throw new ModelError(`${where} is of type TENSOR but holds no tensor`);
      return {
        type: 'tensor',
        value: decodeTensor(a.t, ctx, `the tensor of ${node} attribute '${a.name}'`),
      };
    case T.GRAPH:
      if (!a.g) throw new ModelError(`${where} is of type GRAPH but holds no graph`);
      return { type: 'graph', value: decodeGraph(a.g, ctx) };
    case T.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS:
      return { type: 'ints', value: (a.ints ?? []).map((v) => num(v as LongLike)) };
    case T.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    default:
      throw new ModelError(`${where} has unsupported type ${a.type}`);
  }
}

/**
 * A TensorProto as a Tensor. Sizes are checked against the bytes or values actually
 * present before anything is allocated, so corrupt dims cannot ask for gigabytes.
 */
function decodeTensor(t: onnxProto.onnx.ITensorProto, ctx: DecodeContext, label: string): Tensor {
  const at = `${ctx.source}: ${label}`;
  const dtype = dtypeFromCode(t.dataType ?? 0);
  if (!dtype) throw new ModelError(`${at} has unsupported data type ${t.dataType}`);
  const dims = (t.dims ?? []).map((d) => num(d as LongLike));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new ModelError(`${at} has invalid dims [${dims}]`);
  const n = numel(dims);
  const bytesWanted = n * DTYPE_SIZE[dtype];
  let raw: Uint8Array | undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    raw = readExternalTensor(t, ctx, label, bytesWanted);
  } else if (t.rawData && t.rawData.length > 0) {
    raw = t.rawData;
  }
  if (raw) {
    if (raw.length !== bytesWanted) {
      throw new ModelError(
        `${at} has ${raw.length} bytes of data, dims [${dims}] of ${dtype} need ${bytesWanted}`,
      );
    }
    const data = allocArray(dtype, n);
    // raw_data is little-endian, as is every host Node runs on; copying (rather than
    // viewing) also fixes alignment, since the protobuf slice may start at any byte.
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(raw);
    return { dtype, dims, data };
  }
  // Typed fields: int32_data also carries the 8/16-bit types, bool and float16's bits;
  // uint64_data carries uint32 and uint64.
  let src: ArrayLike<number | LongLike>;
  switch (dtype) {
    case 'float32':
      src = t.floatData ?? [];
      break;
    case 'float64':
      src = t.doubleData ?? [];
      break;
    case 'int64':
      src = (t.int64Data ?? []) as LongLike[];
      break;
    case 'uint32':
    case 'uint64':
      src = (t.uint64Data ?? []) as LongLike[];
      break;
    default:
      src = t.int32Data ?? [];
  }
  if (src.length !== n) {
    throw new ModelError(`${at} has ${src.length} values, dims [${dims}] need ${n}`);
  }
  const data = allocArray(dtype, n);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const unsigned = dtype === 'uint64';
    for (let i = 0; i < n; i++) data[i] = big(src[i] as LongLike, unsigned);
  } else {
    for (let i = 0; i < n; i++) data[i] = num(src[i] as LongLike);
  }
  return { dtype, dims, data };
}

function readExternalTensor(
  t: onnxProto.onnx.ITensorProto,
  ctx: DecodeContext,
  label: string,
  bytes: number,
): Uint8Array {
  const at = `${ctx.source}: ${label}`;
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location) throw new ModelError(`${at} is stored as external data but has no location`);
  if (!ctx.baseDir)
    throw new ModelError(
      `${at} is stored in '${location}', but the model was not read from a file (no folder to read it from)`,
    );
  const full = resolve(ctx.baseDir, location);
  if (isAbsolute(location) || !isInside(resolve(ctx.baseDir), full)) {
    throw new ModelError(`${at} refers to '${location}', outside the model's folder; refused`);
  }
  let file = ctx.externalCache.get(full);
  if (!file) {
    try {
      file = ctx.readExternal(full);
    } catch (err) {
      throw new ModelError(
        `${at}: cannot read external data '${location}': ${(err as Error).message}`,
        { cause: err },
      );
    }
    ctx.externalCache.set(full, file);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : bytes;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new ModelError(`${at}: bad offset '${kv.get('offset')}' or length '${kv.get('length')}'`);
  if (offset + length > file.length) {
    throw new ModelError(
      `${at}: offset ${offset} + length ${length} past the end of '${location}' (${file.length} bytes)`,
    );
  }
  return file.subarray(offset, offset + length);
}

// ---------------------------------------------------------------------------------------

function encodeTensor(name: string, t: Tensor, label: string): onnxProto.onnx.ITensorProto {
  const a = t.data;
  const n = numel(t.dims);
  if (a.length !== n) {
    throw new ModelError(`${label} has ${a.length} elements, dims [${t.dims}] need ${n}`);
  }
  return {
    name,
    dataType: ONNX_DTYPE_CODE[t.dtype],
    dims: t.dims.map((d) => int64Field(d, () => `${label}: dim`)),
    rawData: new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
  };
}

function encodeValueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE_CODE[v.dtype],
        shape: v.shape
          ? {
              dim: v.shape.map((d) =>
                typeof d === 'number'
                  ? { dimValue: int64Field(d, () => `value '${v.name}': dim`) }
                  : typeof d === 'string'
                    ? { dimParam: d }
                    : {},
              ),
            }
          : undefined,
      },
    },
  };
}

function encodeAttr(node: Node, name: string, a: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  const what = () => `node '${node.name}' (${node.opType}) attribute '${name}'`;
  const utf8 = new TextEncoder();
  switch (a.type) {
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'int':
      return { name, type: T.INT, i: int64Field(a.value, what) };
    case 'string':
      return { name, type: T.STRING, s: utf8.encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: encodeTensor('', a.value, `the tensor of ${what()}`) };
    case 'graph':
      return { name, type: T.GRAPH, g: encodeGraph(a.value) };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value.map((v) => int64Field(v, what)) };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map((s) => utf8.encode(s)) };
  }
}

function encodeGraph(g: Graph): onnxProto.onnx.IGraphProto {
  return {
    name: g.name,
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(n, k, v)),
    })),
    initializer: [...g.initializers].map(([k, t]) => encodeTensor(k, t, `tensor '${k}'`)),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    valueInfo: [...g.valueInfo.values()].map(encodeValueInfo),
  };
}

/**
 * Serialises a model: tensor data always as little-endian raw_data, inputs, outputs and
 * value_info with dtype and shape (number → dim_value, string → dim_param, null → no
 * value), IR version at least 8. Int attributes beyond int64 are clamped.
 * @param model - the model
 * @example
 * const session = await ort.InferenceSession.create(encodeModel(model));
 */
export function encodeModel(model: Model): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: Math.max(model.irVersion, 8),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: encodeGraph(model.graph),
  });
  return onnx.ModelProto.encode(proto).finish();
}

/**
 * Writes a model atomically (temp file, then rename): on failure the target is left as it
 * was and no temporary file remains.
 * @param path - target .onnx file; its folder must exist
 * @param model - the model
 * @example
 * writeModel('fused.onnx', model);
 */
export function writeModel(path: string, model: Model): void {
  const bytes = encodeModel(model);
  try {
    writeFileAtomic(path, bytes);
  } catch (err) {
    throw new UsageError(`cannot write model file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
