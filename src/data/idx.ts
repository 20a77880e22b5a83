/**
 * IDX files (the MNIST / Fashion-MNIST tensor format), read and written.
 *
 * Layout: two zero bytes, a dtype code, the number of dimensions `d`, then `d` big-endian
 * uint32 sizes, then the elements in row-major order, big-endian. Files are often
 * gzipped; the reader detects gzip by its magic bytes (0x1f 0x8b), not by the name.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DataError } from '../util/errors.js';

/** Element types an IDX file can hold. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** Typed array for each IDX element type. */
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

/** A decoded IDX tensor: element type, dimensions and row-major data. */
export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}

const CODES: Record<IdxDtype, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};
const SIZES: Record<IdxDtype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

function dtypeOfCode(code: number): IdxDtype | undefined {
  for (const [k, v] of Object.entries(CODES)) if (v === code) return k as IdxDtype;
  return undefined;
}

/** True when the bytes start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decodes IDX bytes (gzipped or raw).
 * @param bytes - the file content.
 * @param name - the file name, used in error messages.
 * @example
 * const { dims, data } = parseIdx(fs.readFileSync('t10k-labels-idx1-ubyte.gz'), 'labels');
 */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  let buf = bytes;
  if (isGzip(buf)) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw new DataError(`${name}: corrupt gzip stream (${(err as Error).message})`, {
        cause: err,
      });
    }
  }
  if (buf.length < 4)
    throw new DataError(`${name}: too short for an IDX header (${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) {
    const magic = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(
      `${name}: not an IDX file (magic bytes ${magic}, expected 00 00 <dtype> <ndim>)`,
    );
  }
  const dtype = dtypeOfCode(buf[2]!);
  if (dtype === undefined) {
    throw new DataError(
      `${name}: unknown IDX dtype code 0x${buf[2]!.toString(16).padStart(2, '0')}`,
    );
  }
  const ndim = buf[3]!;
  const headerLen = 4 + 4 * ndim;
  if (buf.length < headerLen) {
    throw new DataError(
      `${name}: truncated IDX header (${ndim} dims need ${headerLen} bytes, file has ${buf.length})`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const elem = SIZES[dtype];
  const expected = headerLen + count * elem;
  if (buf.length !== expected) {
    throw new DataError(
      `${name}: IDX payload length mismatch: dims [${dims.join(', ')}] of ${dtype} need ${expected} bytes, file has ${buf.length}`,
    );
  }
  return { dtype, dims, data: decodePayload(view, headerLen, count, dtype) };
}

function decodePayload(view: DataView, off: number, n: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer.slice(view.byteOffset + off, view.byteOffset + off + n));
    case 'int8':
      return new Int8Array(view.buffer.slice(view.byteOffset + off, view.byteOffset + off + n));
    case 'int16': {
      const a = new Int16Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getInt16(off + 2 * i, false);
      return a;
    }
    case 'int32': {
      const a = new Int32Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getInt32(off + 4 * i, false);
      return a;
    }
    case 'float32': {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getFloat32(off + 4 * i, false);
      return a;
    }
    case 'float64': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = view.getFloat64(off + 8 * i, false);
      return a;
    }
  }
}

/**
 * Reads an IDX file, gzipped or raw.
 * @param file - path of the file; named in every error.
 * @example
 * const labels = await readIdx('data/fashion-mnist/t10k-labels-idx1-ubyte.gz'); // dims [2000]
 */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new DataError(
      `${file}: cannot read IDX file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      {
        cause: err,
      },
    );
  }
  return parseIdx(bytes, file);
}

/**
 * Encodes a tensor as raw (uncompressed) IDX bytes.
 * @param arr - dtype, dims and row-major data; the data length must equal the product of dims.
 * @example
 * const bytes = encodeIdx({ dtype: 'uint8', dims: [2], data: new Uint8Array([3, 7]) });
 */
export function encodeIdx(arr: IdxArray): Uint8Array {
  const { dtype, dims, data } = arr;
  if (dims.length > 255) throw new DataError(`IDX supports at most 255 dims, got ${dims.length}`);
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff)
      throw new DataError(`IDX dim ${d} is not a uint32`);
    count *= d;
  }
  if (data.length !== count) {
    throw new DataError(
      `IDX data has ${data.length} elements, dims [${dims.join(', ')}] need ${count}`,
    );
  }
  const headerLen = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLen + count * SIZES[dtype]);
  const view = new DataView(out.buffer);
  out[2] = CODES[dtype];
  out[3] = dims.length;
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  const off = headerLen;
  for (let i = 0; i < count; i++) {
    const v = data[i]!;
    switch (dtype) {
      case 'uint8':
        view.setUint8(off + i, v);
        break;
      case 'int8':
        view.setInt8(off + i, v);
        break;
      case 'int16':
        view.setInt16(off + 2 * i, v, false);
        break;
      case 'int32':
        view.setInt32(off + 4 * i, v, false);
        break;
      case 'float32':
        view.setFloat32(off + 4 * i, v, false);
        break;
      case 'float64':
        view.setFloat64(off + 8 * i, v, false);
        break;
    }
  }
  return out;
}

/**
 * Writes an IDX file; gzipped (level 9, deterministic header) when `gzip` is true or,
 * by default, when the name ends with `.gz`.
 * @param file - destination path.
 * @param arr - the tensor to write.
 * @param opts - `gzip` overrides the choice made from the file name.
 * @example
 * await writeIdx('labels-idx1-ubyte.gz', { dtype: 'uint8', dims: [2], data: new Uint8Array([3, 7]) });
 */
export async function writeIdx(
  file: string,
  arr: IdxArray,
  opts: { gzip?: boolean } = {},
): Promise<void> {
  const gzip = opts.gzip ?? file.endsWith('.gz');
  const raw = encodeIdx(arr);
  await writeFile(file, gzip ? gzipSync(raw, { level: 9 }) : raw);
}
