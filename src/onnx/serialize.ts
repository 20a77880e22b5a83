import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import {
  allocArray,
  DTYPE_SIZE,
  type DType,
  dtypeFromCode,
  ONNX_DTYPE_CODE,
  type TensorArray,
} from './dtype.js';
import type { AttrValue, Dim, Graph, Model, Node, ValueInfo } from './ir.js';
import { numel, type Tensor } from './tensor.js';
import { ensureNodeNames, validateGraph } from './validate.js';

const { onnx } = onnxProto;
type LongLike = number | { toNumber(): number } | null | undefined;

function num(v: LongLike): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

interface DecodeContext {
  source: string;
  baseDir?: string;
  externalCache: Map<string, Uint8Array>;
  readExternal: (path: string) => Uint8Array;
}

/**
 * Decodes an ONNX model from bytes into the IR.
 * @param bytes - the .onnx file contents
 * @param opts.source - file name used in every error message
 * @param opts.baseDir - folder of the model file, for tensors stored as external data
 */
export function decodeModel(
  bytes: Uint8Array,
  opts: { source: string; baseDir?: string; readExternal?: (path: string) => Uint8Array },
): Model {
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
  if (!proto.graph || (num(proto.irVersion as LongLike) === 0 && proto.opsetImport.length === 0)) {
    throw new ModelError(`${source}: not a valid ONNX model (no graph or no IR version/opset)`);
  }
  const ctx: DecodeContext = {
    source,
    baseDir: opts.baseDir,
    externalCache: new Map(),
    readExternal:
      opts.readExternal ??
      (() => {
        throw new ModelError(`${source}: external data needs the model's folder`);
      }),
  };
  let graph: Graph;
  try {
    graph = decodeGraph(proto.graph as onnxProto.onnx.GraphProto, ctx);
  } catch (err) {
    // Garbage that happens to parse as protobuf must still fail as a ModelError.
    if (err instanceof ModelError) throw err;
    throw new ModelError(`${source}: not a valid ONNX model (${(err as Error).message})`, {
      cause: err,
    });
  }
  ensureNodeNames(graph);
  validateGraph(graph, { source });
  const metadata: Record<string, string> = {};
  for (const p of proto.metadataProps) metadata[p.key ?? ''] = p.value ?? '';
  return {
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
}

/**
 * Reads a .onnx file (external data resolved inside the model's folder only).
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
  const { readFileSync } = await import('node:fs');
  return decodeModel(bytes, {
    source: path,
    baseDir: dirname(resolve(path)),
    readExternal: (p) => readFileSync(p),
  });
}

function decodeValueInfo(
  v: onnxProto.onnx.IValueInfoProto,
  ctx: DecodeContext,
): ValueInfo | undefined {
  const tt = v.type?.tensorType;
  if (!tt) return undefined;
  const dtype = dtypeFromCode(tt.elemType ?? 0);
  if (!dtype) return undefined;
  // `value` names the member of the dim's oneof that is set (dimValue, dimParam or none).
  const shape: Dim[] | null = tt.shape
    ? (tt.shape.dim ?? []).map((d) => {
        const which = (d as { value?: string }).value;
        if (which === 'dimParam' || (!which && d.dimParam)) return d.dimParam ?? null;
        if (which === 'dimValue' || (!which && d.dimValue)) return num(d.dimValue as LongLike);
        return null;
      })
    : null;
  void ctx;
  return { name: v.name ?? '', dtype, shape };
}

function decodeGraph(g: onnxProto.onnx.IGraphProto, ctx: DecodeContext): Graph {
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', decodeTensor(t, ctx));
  const inputs: ValueInfo[] = [];
  for (const v of g.input ?? []) {
    if (initializers.has(v.name ?? '')) continue; // IR < 4 lists initializers as inputs
    const info = decodeValueInfo(v, ctx);
    if (!info)
      throw new ModelError(`${ctx.source}: graph input '${v.name}' has no supported tensor type`);
    inputs.push(info);
  }
  const outputs: ValueInfo[] = (g.output ?? []).map(
    (v) => decodeValueInfo(v, ctx) ?? { name: v.name ?? '', dtype: 'float32', shape: null },
  );
  const valueInfo = new Map<string, ValueInfo>();
  for (const v of g.valueInfo ?? []) {
    const info = decodeValueInfo(v, ctx);
    if (info) valueInfo.set(info.name, info);
  }
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const attrs: Record<string, AttrValue> = {};
    for (const a of n.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a, ctx, n.name || `#${i}`);
    return {
      name: n.name || `${n.opType}_${i}`,
      opType: n.opType ?? '',
      domain: n.domain === 'ai.onnx' ? '' : (n.domain ?? ''),
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs,
    };
  });
  return { name: g.name ?? 'graph', nodes, inputs, outputs, initializers, valueInfo };
}

function decodeAttr(
  a: onnxProto.onnx.IAttributeProto,
  ctx: DecodeContext,
  node: string,
): AttrValue {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case T.INT:
      return { type: 'int', value: num(a.i as LongLike) };
    case T.STRING:
      return { type: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case T.TENSOR:
      return { type: 'tensor', value: decodeTensor(a.t!, ctx) };
    case T.GRAPH:
      return { type: 'graph', value: decodeGraph(a.g!, ctx) };
    case T.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS:
      return { type: 'ints', value: (a.ints ?? []).map((v) => num(v as LongLike)) };
    case T.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map((s) => new TextDecoder().decode(s)) };
    default:
      throw new ModelError(
        `${ctx.source}: node '${node}' attribute '${a.name}' has unsupported type ${a.type}`,
      );
  }
}

function decodeTensor(t: onnxProto.onnx.ITensorProto, ctx: DecodeContext): Tensor {
  const name = t.name ?? '';
  const dtype = dtypeFromCode(t.dataType ?? 0);
  if (!dtype)
    throw new ModelError(`${ctx.source}: tensor '${name}' has unsupported data type ${t.dataType}`);
  const dims = (t.dims ?? []).map((d) => num(d as LongLike));
  const n = numel(dims);
  const data = allocArray(dtype, n);
  const bytesWanted = n * DTYPE_SIZE[dtype];
  let raw: Uint8Array | undefined;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    raw = readExternalTensor(t, ctx, bytesWanted);
  } else if (t.rawData && t.rawData.length > 0) {
    raw = t.rawData;
  }
  if (raw) {
    if (raw.length !== bytesWanted) {
      throw new ModelError(
        `${ctx.source}: tensor '${name}' has ${raw.length} bytes, dims [${dims}] of ${dtype} need ${bytesWanted}`,
      );
    }
    // Copy into the (aligned) typed array; the protobuf slice may be unaligned.
    new Uint8Array(data.buffer).set(raw);
    return { dtype, dims, data };
  }
  const fill = (
    src: ArrayLike<number | LongLike> | null | undefined,
    conv: (v: number | LongLike) => number | bigint,
  ) => {
    const s = src ?? [];
    if (s.length !== n) {
      throw new ModelError(
        `${ctx.source}: tensor '${name}' has ${s.length} values, dims [${dims}] need ${n}`,
      );
    }
    const d = data as unknown as (number | bigint)[];
    for (let i = 0; i < n; i++) d[i] = conv(s[i]!);
  };
  const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
  switch (dtype) {
    case 'float32':
      fill(t.floatData, (v) => v as number);
      break;
    case 'float64':
      fill(t.doubleData, (v) => v as number);
      break;
    case 'int64':
      fill(t.int64Data as LongLike[], (v) => BigInt(num(v as LongLike)));
      break;
    case 'uint64':
      fill(t.uint64Data as LongLike[], (v) => BigInt(num(v as LongLike)));
      break;
    case 'uint32':
      fill(t.uint64Data as LongLike[], (v) => num(v as LongLike));
      break;
    default:
      fill(t.int32Data, (v) => (big ? BigInt(v as number) : (v as number)));
  }
  return { dtype, dims, data };
}

function readExternalTensor(
  t: onnxProto.onnx.ITensorProto,
  ctx: DecodeContext,
  bytes: number,
): Uint8Array {
  const name = t.name ?? '';
  const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = kv.get('location');
  if (!location)
    throw new ModelError(`${ctx.source}: tensor '${name}' is external but has no location`);
  if (!ctx.baseDir)
    throw new ModelError(
      `${ctx.source}: tensor '${name}' is stored in '${location}', but the model was not read from a file`,
    );
  const full = resolve(ctx.baseDir, location);
  const rel = relative(ctx.baseDir, full);
  if (isAbsolute(location) || rel.startsWith('..') || isAbsolute(rel)) {
    throw new ModelError(
      `${ctx.source}: tensor '${name}' refers to '${location}', outside the model's folder; refused`,
    );
  }
  let file = ctx.externalCache.get(full);
  if (!file) {
    try {
      file = ctx.readExternal(full);
    } catch (err) {
      throw new ModelError(
        `${ctx.source}: tensor '${name}': cannot read external data '${location}': ${(err as Error).message}`,
        { cause: err },
      );
    }
    ctx.externalCache.set(full, file);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : bytes;
  if (!(offset >= 0) || !(length >= 0) || offset + length > file.length) {
    throw new ModelError(
      `${ctx.source}: tensor '${name}': offset ${offset} + length ${length} past the end of '${location}' (${file.length} bytes)`,
    );
  }
  return file.subarray(offset, offset + length);
}

// ---------------------------------------------------------------------------------------

function encodeTensor(name: string, t: Tensor): onnxProto.onnx.ITensorProto {
  const a = t.data as TensorArray;
  return {
    name,
    dataType: ONNX_DTYPE_CODE[t.dtype as DType],
    dims: t.dims,
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
                  ? { dimValue: d }
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

function encodeAttr(name: string, a: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: encodeTensor('', a.value) };
    case 'graph':
      return { name, type: T.GRAPH, g: encodeGraph(a.value) };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
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
      attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v)),
    })),
    initializer: [...g.initializers].map(([k, t]) => encodeTensor(k, t)),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    valueInfo: [...g.valueInfo.values()].map(encodeValueInfo),
  };
}

/** Serialises a model (tensor data always as little-endian raw_data). */
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
