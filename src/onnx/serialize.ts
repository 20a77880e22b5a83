/**
 * Reading and writing `.onnx` files: ModelProto (via the protobufjs binding `onnx-proto`)
 * to and from the IR of `ir.ts`. Every failure on a malformed file is a ModelError naming
 * the file (and the tensor, node or attribute at fault); no protobufjs error escapes.
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelError, UsageError } from '../util/errors.js';
import { allocArray, DTYPE_SIZE, dtypeFromCode, ONNX_DTYPE_CODE } from './dtype.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  dataFileNames,
  isInside,
  layOut,
  openInside,
  type OpenedFile,
  type Placement,
  readRegularFile,
  writeChunksAtomic,
} from './external-data.js';
import {
  type AttrValue,
  type Dim,
  type Graph,
  MAX_OPSET,
  MIN_OPSET,
  type Model,
  type Node,
  type OpsetImport,
  type ValueInfo,
} from './ir.js';
import { checkShapeBounds, MAX_RANK, maxTensorBytes } from './limits.js';
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
  /** External-data files opened so far, by absolute path (closed when decoding ends). */
  files: Map<string, OpenedFile>;
  openExternal: (path: string) => OpenedFile;
  /** Top-level initializers read from external data: name → location and offset. */
  external: Map<string, { location: string; offset: number; path: string }>;
}

/** Options of {@link decodeModel}. */
export interface DecodeOptions {
  /** File name (or any label) that starts every error message. */
  source: string;
  /** Folder of the model file, for tensors stored as external data. */
  baseDir?: string;
  /**
   * Opens an external-data file, given its absolute path, already checked by name to lie
   * inside baseDir. Default: open it if, symbolic links resolved, it is still inside
   * baseDir and it is a regular file (a FIFO or device is refused without blocking).
   */
  openExternal?: (path: string) => OpenedFile;
}

/** Protobuf cannot encode a message of 2 GiB or more. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** Subgraphs (If/Loop/Scan bodies) nested deeper than this are refused. */
const MAX_GRAPH_DEPTH = 64;

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
    files: new Map(),
    openExternal: opts.openExternal ?? ((p) => openInside(opts.baseDir ?? dirname(p), p)),
    external: new Map(),
  };
  let model: Model;
  try {
    const opsetImports = checkOpsets(
      source,
      proto.opsetImport.map((o) => ({
        domain: o.domain ?? '',
        version: num(o.version as LongLike),
      })),
    );
    const graph = decodeGraph(proto.graph, ctx, 0);
    const metadata: Record<string, string> = {};
    for (const p of proto.metadataProps) metadata[p.key ?? ''] = p.value ?? '';
    model = {
      graph,
      opsetImports,
      irVersion: num(proto.irVersion as LongLike),
      producerName: proto.producerName ?? '',
      producerVersion: proto.producerVersion ?? '',
      metadata,
    };
    const functions = rawFields(bytes, MODEL_FUNCTIONS_FIELD);
    if (functions.length) model.functions = functions;
    if (ctx.external.size) model.externalData = ctx.external;
  } catch (err) {
    // Garbage that happens to parse as protobuf must still fail as a ModelError.
    if (err instanceof ModelError) throw err;
    throw new ModelError(`${source}: not a valid ONNX model (${(err as Error).message})`, {
      cause: err,
    });
  } finally {
    for (const f of ctx.files.values()) f.close();
  }
  ensureNodeNames(model.graph);
  validateGraph(model.graph, { source });
  return model;
}

/**
 * The model's opset imports, checked: one entry per domain, and an ai.onnx opset within
 * {@link MIN_OPSET}..{@link MAX_OPSET}, the range whose operator versions the shape rules
 * and the exporters this project reads agree on. Other domains (com.microsoft, model
 * functions) are ONNX Runtime's business and pass through.
 */
function checkOpsets(source: string, imports: OpsetImport[]): OpsetImport[] {
  const seen = new Set<string>();
  for (const o of imports) {
    const domain = o.domain === 'ai.onnx' ? '' : o.domain;
    if (seen.has(domain))
      throw new ModelError(
        `${source}: opset of domain '${o.domain || 'ai.onnx'}' is imported twice`,
      );
    seen.add(domain);
    if (domain === '' && !(o.version >= MIN_OPSET && o.version <= MAX_OPSET)) {
      throw new ModelError(
        `${source}: ai.onnx opset ${o.version} is not supported (supported: ${MIN_OPSET} to ${MAX_OPSET}); convert the model with onnx.version_converter or export it again at a supported opset`,
      );
    }
  }
  return imports;
}

/** ModelProto field number of `functions` (repeated FunctionProto). */
const MODEL_FUNCTIONS_FIELD = 25;

/**
 * The raw payloads of one length-delimited field of a top-level protobuf message, in
 * order, read straight off the wire (so fields the binding does not model survive).
 * The message has already decoded once, so its framing is sound; any inconsistency
 * still fails as an Error, which the caller turns into a ModelError.
 */
function rawFields(bytes: Uint8Array, field: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const b = bytes[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    throw new Error('varint too long');
  };
  while (pos < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    const num = Math.floor(tag / 8);
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (pos + len > bytes.length) throw new Error('truncated field');
      if (num === field) out.push(bytes.slice(pos, pos + len));
      pos += len;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

/** Encodes a varint (lengths and tags, all below 2^53). */
function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/**
 * Reads a .onnx file (asynchronously). External data is read from the model's folder
 * only: a location that is absolute, climbs out with `..` or leads out through a
 * symbolic link is refused.
 * @param path - the .onnx file
 * @example
 * const model = await readModel('resnet.onnx');
 */
// eslint-disable-next-line @typescript-eslint/require-await -- a bad file rejects, never throws
export async function readModel(path: string): Promise<Model> {
  let bytes: Uint8Array;
  try {
    // A FIFO or device named as the model would block a plain read: refuse non-files.
    bytes = readRegularFile(path, PROTOBUF_LIMIT);
  } catch (err) {
    throw new ModelError(`cannot read model file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return decodeModel(bytes, { source: path, baseDir: dirname(resolve(path)) });
}

function decodeValueInfo(
  v: onnxProto.onnx.IValueInfoProto,
  ctx: DecodeContext,
  what: string,
): ValueInfo | undefined {
  const tt = v.type?.tensorType;
  if (!tt) return undefined;
  const dtype = dtypeFromCode(tt.elemType ?? 0);
  if (!dtype) return undefined;
  const dims = tt.shape?.dim ?? [];
  const label = `${ctx.source}: ${what} '${v.name ?? ''}'`;
  if (dims.length > MAX_RANK)
    throw new ModelError(`${label} has rank ${dims.length}, over the limit of ${MAX_RANK}`);
  // `value` names the member of the dim's oneof that is set (dimValue, dimParam or none).
  // A negative dim_value (some exporters' "unknown") is read as unknown.
  const shape: Dim[] | null = tt.shape
    ? dims.map((d) => {
        const which = (d as { value?: string }).value;
        if (which === 'dimParam') return d.dimParam ?? null;
        if (which === 'dimValue') {
          const n = num(d.dimValue as LongLike);
          return n < 0 ? null : n;
        }
        return null;
      })
    : null;
  checkShapeBounds(label, dtype, shape);
  return { name: v.name ?? '', dtype, shape };
}

function decodeGraph(g: onnxProto.onnx.IGraphProto, ctx: DecodeContext, depth: number): Graph {
  if (depth > MAX_GRAPH_DEPTH)
    throw new ModelError(`${ctx.source}: subgraphs are nested over ${MAX_GRAPH_DEPTH} deep`);
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) {
    const name = t.name ?? '';
    if (initializers.has(name))
      throw new ModelError(
        `${ctx.source}: initializer '${name}' is defined twice${depth ? ' in a subgraph' : ''}`,
      );
    initializers.set(
      name,
      decodeTensor(t, ctx, `tensor '${name}'`, depth === 0 ? name : undefined),
    );
  }
  const inputs: ValueInfo[] = [];
  for (const v of g.input ?? []) {
    if (initializers.has(v.name ?? '')) continue; // IR < 4 lists initializers as inputs
    const info = decodeValueInfo(v, ctx, 'graph input');
    if (!info)
      throw new ModelError(`${ctx.source}: graph input '${v.name}' has no supported tensor type`);
    inputs.push(info);
  }
  // An output without a (supported) tensor type is kept by name, marked untyped.
  const outputs: ValueInfo[] = (g.output ?? []).map(
    (v) =>
      decodeValueInfo(v, ctx, 'graph output') ?? {
        name: v.name ?? '',
        dtype: 'float32',
        shape: null,
        untyped: true,
      },
  );
  const valueInfo = new Map<string, ValueInfo>();
  for (const v of g.valueInfo ?? []) {
    const info = decodeValueInfo(v, ctx, 'value_info of');
    if (info) valueInfo.set(info.name, info);
  }
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const label = n.name ? `node '${n.name}'` : `node #${i} (${n.opType})`;
    const attrs: Record<string, AttrValue> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a, ctx, label, depth);
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
function attrType(a: onnxProto.onnx.IAttributeProto): onnxProto.onnx.AttributeProto.AttributeType {
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
  depth: number,
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
      return { type: 'graph', value: decodeGraph(a.g, ctx, depth + 1) };
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
 * present, and against memory, before anything is allocated, so corrupt dims cannot ask
 * for gigabytes. `topLevel` names an initializer of the main graph, whose external-data
 * location is recorded for writing.
 */
function decodeTensor(
  t: onnxProto.onnx.ITensorProto,
  ctx: DecodeContext,
  label: string,
  topLevel?: string,
): Tensor {
  const at = `${ctx.source}: ${label}`;
  const dtype = dtypeFromCode(t.dataType ?? 0);
  if (!dtype) throw new ModelError(`${at} has unsupported data type ${t.dataType}`);
  if ((t.dims ?? []).length > MAX_RANK)
    throw new ModelError(`${at} has rank ${(t.dims ?? []).length}, over the limit of ${MAX_RANK}`);
  const dims = (t.dims ?? []).map((d) => num(d as LongLike));
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw new ModelError(`${at} has invalid dims [${dims}]`);
  const n = numel(dims);
  const bytesWanted = n * DTYPE_SIZE[dtype];
  if (bytesWanted > Math.min(maxTensorBytes(), 2 ** 32))
    throw new ModelError(`${at} has dims [${dims}] (${bytesWanted} bytes), too large to load`);
  let raw: Uint8Array | undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const ext = readExternalTensor(t, ctx, label, bytesWanted);
    raw = ext.bytes;
    if (topLevel !== undefined)
      ctx.external.set(topLevel, { location: ext.location, offset: ext.offset, path: ext.path });
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
    for (let i = 0; i < n; i++) data[i] = big(src[i], unsigned);
  } else {
    for (let i = 0; i < n; i++) data[i] = num(src[i]);
  }
  return { dtype, dims, data };
}

function readExternalTensor(
  t: onnxProto.onnx.ITensorProto,
  ctx: DecodeContext,
  label: string,
  bytes: number,
): { bytes: Uint8Array; location: string; offset: number; path: string } {
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
  let file = ctx.files.get(full);
  if (!file) {
    try {
      file = ctx.openExternal(full);
    } catch (err) {
      throw new ModelError(
        `${at}: cannot read external data '${location}': ${(err as Error).message}`,
        { cause: err },
      );
    }
    ctx.files.set(full, file);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : bytes;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    throw new ModelError(`${at}: bad offset '${kv.get('offset')}' or length '${kv.get('length')}'`);
  if (length !== bytes)
    throw new ModelError(
      `${at} has ${length} bytes of data in '${location}', dims [${(t.dims ?? []).map((d) => num(d as LongLike))}] need ${bytes}`,
    );
  if (offset + length > file.size) {
    throw new ModelError(
      `${at}: offset ${offset} + length ${length} past the end of '${location}' (${file.size} bytes)`,
    );
  }
  try {
    return { bytes: file.read(offset, length), location, offset, path: full };
  } catch (err) {
    throw new ModelError(
      `${at}: cannot read external data '${location}': ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

// ---------------------------------------------------------------------------------------

function encodeTensor(
  name: string,
  t: Tensor,
  label: string,
  placement?: Placement,
): onnxProto.onnx.ITensorProto {
  const a = t.data;
  const n = numel(t.dims);
  if (a.length !== n) {
    throw new ModelError(`${label} has ${a.length} elements, dims [${t.dims}] need ${n}`);
  }
  const proto: onnxProto.onnx.ITensorProto = {
    name,
    dataType: ONNX_DTYPE_CODE[t.dtype],
    dims: t.dims.map((d) => int64Field(d, () => `${label}: dim`)),
  };
  if (placement) {
    proto.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    proto.externalData = [
      { key: 'location', value: placement.location },
      { key: 'offset', value: String(placement.offset) },
      { key: 'length', value: String(placement.length) },
    ];
  } else proto.rawData = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return proto;
}

function encodeValueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  if (v.untyped) return { name: v.name };
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

function encodeGraph(g: Graph, placements?: Map<string, Placement>): onnxProto.onnx.IGraphProto {
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
    initializer: [...g.initializers].map(([k, t]) =>
      encodeTensor(k, t, `tensor '${k}'`, placements?.get(k)),
    ),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    valueInfo: [...g.valueInfo.values()].map(encodeValueInfo),
  };
}

/**
 * Serialises a model: tensor data as little-endian raw_data (or, for the tensors in
 * `placements`, as references to external data), inputs, outputs and value_info with
 * dtype and shape (number → dim_value, string → dim_param, null → no value), IR version
 * at least 8, model-local functions written back byte for byte. Int attributes beyond
 * int64 are clamped. Fails with a ModelError when the result would pass protobuf's 2 GB
 * limit (write such a model with {@link writeModel}, which stores its tensors outside).
 * @param model - the model
 * @example
 * const session = await ort.InferenceSession.create(encodeModel(model));
 */
export function encodeModel(model: Model): Uint8Array {
  return encodeWith(model, undefined);
}

/** {@link encodeModel} with the initializers in `placements` stored as external data. */
function encodeWith(model: Model, placements: Map<string, Placement> | undefined): Uint8Array {
  const inline = inlineBytes(model, placements);
  if (inline > PROTOBUF_LIMIT - 2 ** 26) {
    throw new ModelError(
      `model '${model.graph.name}' holds ${(inline / 2 ** 30).toFixed(2)} GB of tensors inline, over protobuf's 2 GB limit; write it to a file with external data`,
    );
  }
  const proto = onnx.ModelProto.create({
    irVersion: Math.max(model.irVersion, 8),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: encodeGraph(model.graph, placements),
  });
  const body = onnx.ModelProto.encode(proto).finish();
  if (!model.functions?.length) return body;
  // Append each function as field 14 (repeated FunctionProto), exactly as it was read.
  const parts: Uint8Array[] = [body];
  for (const f of model.functions) {
    parts.push(
      Uint8Array.from([...varintBytes(MODEL_FUNCTIONS_FIELD * 8 + 2), ...varintBytes(f.length)]),
      f,
    );
  }
  return concatBytes(parts);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytes of tensor data a model would hold inline (attribute and subgraph tensors included). */
function inlineBytes(model: Model, placements?: Map<string, Placement>): number {
  let total = 0;
  const visit = (g: Graph, top: boolean) => {
    for (const [k, t] of g.initializers)
      if (!(top && placements?.has(k))) total += t.data.byteLength;
    for (const n of g.nodes)
      for (const a of Object.values(n.attrs)) {
        if (a.type === 'tensor') total += a.value.data.byteLength;
        else if (a.type === 'graph') visit(a.value, false);
      }
  };
  visit(model.graph, true);
  return total;
}

/** A path with links resolved when it exists, else just made absolute. */
function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

/** Options of {@link writeModel}. */
export interface WriteOptions {
  /**
   * Where tensor data goes. 'auto' (default): as external data when the model was read
   * with external data (keeping that layout) or when its tensors pass
   * {@link EXTERNAL_DATA_THRESHOLD}; inline otherwise. 'always': every initializer of at
   * least 1 KiB goes to one data file. 'never': inline (fails past protobuf's 2 GB).
   */
  externalData?: 'auto' | 'always' | 'never';
  /**
   * Total initializer bytes above which 'auto' goes external (default
   * {@link EXTERNAL_DATA_THRESHOLD}, just under protobuf's 2 GB).
   */
  inlineLimit?: number;
}

/**
 * Total initializer bytes above which {@link writeModel} stores tensors as external
 * data by itself: protobuf's 2 GB limit less room for the graph.
 */
export const EXTERNAL_DATA_THRESHOLD = PROTOBUF_LIMIT - 2 ** 26;

/** Initializers smaller than this stay inline when others go to a data file (as onnx does). */
const SMALL_TENSOR = 1024;

/**
 * Where each initializer goes when `model` is written to `path` with external data, or
 * undefined to write it inline. A model read with external data keeps its layout: the
 * same tensors go out, those that shared a file share one again, in the same order, with
 * offsets recomputed; an initializer added since (a copy made by fusion, say) joins the
 * first file when it is 1 KiB or more. File names come from `path` ({@link dataFileNames}).
 * @param path - the .onnx file to be written
 * @param model - the model
 * @param opts - see {@link WriteOptions}
 * @returns placements by initializer name, and each data file's size by location
 */
export function planExternalData(
  path: string,
  model: Model,
  opts: WriteOptions = {},
): { placements: Map<string, Placement>; sizes: Map<string, number> } | undefined {
  const mode = opts.externalData ?? 'auto';
  if (mode === 'never') return undefined;
  const inits = [...model.graph.initializers];
  const kept = model.externalData && model.externalData.size > 0 ? model.externalData : undefined;
  const total = inits.reduce((a, [, t]) => a + t.data.byteLength, 0);
  if (mode === 'auto' && !kept && total <= (opts.inlineLimit ?? EXTERNAL_DATA_THRESHOLD))
    return undefined;
  // Original locations in order of first use, each renamed after the new file.
  const originals = kept ? [...new Set(inits.flatMap(([k]) => kept.get(k)?.location ?? []))] : [];
  const names = dataFileNames(path, Math.max(originals.length, 1));
  const rename = new Map(originals.map((loc, i) => [loc, names[i]!]));
  const order: { name: string; location: string; length: number; was: number }[] = [];
  for (const [k, t] of inits) {
    const was = kept?.get(k);
    const location = was
      ? rename.get(was.location)!
      : t.data.byteLength >= SMALL_TENSOR
        ? names[0]!
        : undefined;
    if (location !== undefined)
      order.push({
        name: k,
        location,
        length: t.data.byteLength,
        was: was?.offset ?? Number.MAX_SAFE_INTEGER,
      });
  }
  if (order.length === 0) return undefined;
  // Files in order; within a file, the original's order (by offset), new tensors last.
  order.sort((a, b) => names.indexOf(a.location) - names.indexOf(b.location) || a.was - b.was);
  return layOut(order);
}

/**
 * Writes a model atomically (temp file, then rename): on failure the target is left as it
 * was and no temporary file remains. Large models, and models read with external data,
 * are written with their tensors in data files next to the model ({@link WriteOptions});
 * those are written (each atomically) before the model that refers to them.
 * @param path - target .onnx file; its folder must exist
 * @param model - the model
 * @param opts - external data mode
 * @returns the data files written, as paths (empty when everything is inline)
 * @example
 * writeModel('fused.onnx', model); // fused.onnx (+ fused.onnx.data if the model had one)
 */
export function writeModel(path: string, model: Model, opts: WriteOptions = {}): string[] {
  const plan = planExternalData(path, model, opts);
  const bytes = encodeWith(model, plan?.placements);
  const dir = dirname(resolve(path));
  const written: string[] = [];
  if (plan && model.externalData) {
    // The model's own data, read from these files, must survive: the model it came from
    // (or another writer) still points at them.
    const read = new Set([...model.externalData.values()].map((e) => realOrResolved(e.path)));
    for (const location of plan.sizes.keys()) {
      const target = resolve(dir, location);
      if (read.has(realOrResolved(target)))
        throw new UsageError(
          `cannot write model file ${path}: its data file ${target} is the one the model's tensors were read from; write to another name or folder`,
        );
    }
  }
  try {
    if (plan) {
      for (const [location, size] of plan.sizes) {
        const file = resolve(dir, location);
        writeChunksAtomic(
          file,
          size,
          (function* () {
            for (const [k, p] of plan.placements) {
              if (p.location !== location) continue;
              const d = model.graph.initializers.get(k)!.data;
              yield {
                offset: p.offset,
                bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
              };
            }
          })(),
        );
        written.push(file);
      }
    }
    writeFileAtomic(path, bytes);
  } catch (err) {
    throw new UsageError(`cannot write model file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return written;
}
