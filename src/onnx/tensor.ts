import { allocArray, type DType, type TensorArray } from './dtype.js';

/** A dense tensor: dtype, dims and a typed array of `product(dims)` elements (row-major). */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorArray;
}

/** Number of elements of a shape (1 for a scalar). */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

/**
 * Builds a tensor, checking that the data length matches the dims.
 * @param dtype - element type
 * @param dims - shape
 * @param data - values; numbers are converted to the dtype's typed array
 * @example
 * const w = makeTensor('float32', [2, 2], [1, 0, 0, 1]);
 */
export function makeTensor(
  dtype: DType,
  dims: number[],
  data?: TensorArray | ArrayLike<number> | ArrayLike<bigint>,
): Tensor {
  const n = numel(dims);
  const arr = allocArray(dtype, n);
  if (data !== undefined) {
    if (data.length !== n) {
      throw new RangeError(`tensor data has ${data.length} elements, dims [${dims}] need ${n}`);
    }
    if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) {
      for (let i = 0; i < n; i++) arr[i] = BigInt(data[i] as number | bigint);
    } else {
      for (let i = 0; i < n; i++) arr[i] = Number(data[i]);
    }
  }
  return { dtype, dims: [...dims], data: arr };
}

/** A float32 tensor (data is used as is when it is already a Float32Array). */
export function float32(dims: number[], data?: Float32Array | ArrayLike<number>): Tensor {
  if (data instanceof Float32Array && data.length === numel(dims)) {
    return { dtype: 'float32', dims: [...dims], data };
  }
  return makeTensor('float32', dims, data);
}

/** An int64 tensor from plain numbers. */
export function int64(dims: number[], data: ArrayLike<number>): Tensor {
  return makeTensor('int64', dims, data);
}

/** The tensor's elements as plain numbers (int64 converted; precision beyond 2^53 lost). */
export function toNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** A float64 copy of a float tensor's data. */
export function toFloat64(t: Tensor): Float64Array {
  return Float64Array.from(t.data as ArrayLike<number>);
}
