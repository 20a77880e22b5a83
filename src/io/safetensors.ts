import { readFileSync } from 'node:fs';
import { DataError } from '../util/errors.js';
import { allocArray, DTYPE_SIZE, type DType } from '../onnx/dtype.js';
import { numel, type Tensor } from '../onnx/tensor.js';
import { writeFileAtomic } from '../util/atomic-write.js';

// safetensors: u64 little-endian header length, a JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: { str: str } },
// then the raw little-endian tensor bytes (offsets relative to the end of the header).
// BF16 (bfloat16, the dtype of many PyTorch checkpoints) has no dtype of its own here: a
// bfloat16 is the upper half of a float32's bits, so it is read as float32, exactly.

const ST_DTYPE: Record<string, DType> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  I8: 'int8',
  I16: 'int16',
  I32: 'int32',
  I64: 'int64',
  U8: 'uint8',
  U16: 'uint16',
  U32: 'uint32',
  U64: 'uint64',
  BOOL: 'bool',
};
const DTYPE_ST = Object.fromEntries(Object.entries(ST_DTYPE).map(([k, v]) => [v, k])) as Record<
  DType,
  string
>;

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/**
 * Decodes a safetensors buffer.
 * @param buf - file contents
 * @param source - file name for error messages
 */
export function decodeSafetensors(buf: Uint8Array, source: string): SafetensorsFile {
  if (buf.byteLength < 8)
    throw new DataError(`${source}: not a safetensors file (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen <= 0 || 8 + headerLen > buf.byteLength) {
    throw new DataError(
      `${source}: header length ${headerLen} does not fit a ${buf.byteLength}-byte file`,
    );
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen))) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw new DataError(`${source}: header is not valid JSON`, { cause: err });
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const bf16 = e.dtype === 'BF16';
    const dtype = bf16 ? 'float32' : e.dtype ? ST_DTYPE[e.dtype] : undefined;
    if (!dtype)
      throw new DataError(`${source}: tensor '${name}' has unsupported dtype ${String(e.dtype)}`);
    if (!Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new DataError(`${source}: tensor '${name}' lacks shape or data_offsets`);
    }
    const [begin, end] = e.data_offsets;
    const n = numel(e.shape);
    const bytes = n * (bf16 ? 2 : DTYPE_SIZE[dtype]);
    if (end - begin !== bytes || dataStart + end > buf.byteLength || begin < 0) {
      throw new DataError(
        `${source}: tensor '${name}' [${e.shape.join(', ')}] ${e.dtype} needs ${bytes} bytes, offsets [${begin}, ${end}] in a ${buf.byteLength - dataStart}-byte body`,
      );
    }
    const body = buf.subarray(dataStart + begin, dataStart + end);
    const arr = bf16 ? bfloat16ToFloat32(body) : allocArray(dtype, n);
    if (!bf16) new Uint8Array(arr.buffer).set(body);
    tensors.set(name, { dtype, dims: [...e.shape], data: arr });
  }
  return { tensors, metadata };
}

/** Widens little-endian bfloat16 values to float32 (exact: bf16 bits are f32's upper half). */
function bfloat16ToFloat32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength / 2);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) bits[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16;
  return out;
}

/** Reads a safetensors file (BF16 tensors come back as float32). */
export function readSafetensors(path: string): SafetensorsFile {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new DataError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return decodeSafetensors(buf, path);
}

/** Encodes tensors (sorted by name, 8-byte aligned header as the reference writer pads). */
export function encodeSafetensors(
  tensors: Map<string, Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const n of names) {
    const t = tensors.get(n)!;
    const bytes = t.data.byteLength;
    header[n] = { dtype: DTYPE_ST[t.dtype], shape: t.dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const n of names) {
    const t = tensors.get(n)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, Tensor>,
  metadata: Record<string, string> = {},
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
