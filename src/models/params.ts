import { ModelError } from '../util/errors.js';
import type { Tensor } from '../onnx/tensor.js';

/** A named float32 tensor that training updates in place. */
export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Parameters (and buffers) by name, in insertion order. Parameters live here, in
 * TypeScript, between ONNX Runtime steps; optimisers update `data` in place.
 * @example
 * const store = new ParamStore();
 * store.set('head.weight', [10, 192], new Float32Array(1920));
 * store.get('head.weight').data[0] = 0;
 * store.get('head.wieght'); // ModelError: no parameter named 'head.wieght' (close: head.weight)
 */
export class ParamStore {
  private readonly map = new Map<string, Param>();

  /**
   * Copies the named float32 initializers into a new store.
   * @param inits - initializers by name (an ONNX graph's)
   * @param names - which of them to copy, in the store's order
   * @example
   * const store = ParamStore.fromInitializers(model.graph.initializers, built.params);
   */
  static fromInitializers(inits: Map<string, Tensor>, names: Iterable<string>): ParamStore {
    const s = new ParamStore();
    for (const n of names) {
      const t = inits.get(n);
      if (!t) throw new ModelError(`no initializer named '${n}'`);
      if (t.dtype !== 'float32')
        throw new ModelError(`initializer '${n}' is ${t.dtype}, parameters must be float32`);
      s.set(n, [...t.dims], Float32Array.from(t.data as Float32Array));
    }
    return s;
  }

  /**
   * Copies every tensor of a map (all float32) into a new store.
   * @param tensors - tensors by name
   * @example
   * const store = ParamStore.fromTensors(readSafetensors(path).tensors);
   */
  static fromTensors(tensors: Map<string, Tensor>): ParamStore {
    return ParamStore.fromInitializers(tensors, tensors.keys());
  }

  /**
   * Adds or replaces a parameter (the array is kept, not copied).
   * @param name - parameter name
   * @param shape - its dimensions; their product must equal `data.length`
   * @param data - its values
   * @example
   * store.set('fc.bias', [10], new Float32Array(10));
   */
  set(name: string, shape: number[], data: Float32Array): void {
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ModelError(`parameter '${name}': invalid shape [${shape.join(', ')}]`);
    }
    const size = shape.reduce((a, d) => a * d, 1);
    if (size !== data.length) {
      throw new ModelError(
        `parameter '${name}': shape [${shape.join(', ')}] holds ${size} values, data has ${data.length}`,
      );
    }
    this.map.set(name, { name, shape, data });
  }

  /** Whether a parameter of that name exists. */
  has(name: string): boolean {
    return this.map.has(name);
  }

  /**
   * The parameter of that name. A missing name fails with a ModelError that lists up to
   * five close names (same last segment, or a small edit distance), closest first.
   * @param name - parameter name
   * @example
   * const w = store.get('blocks.0.mlp.fc1.weight').data;
   */
  get(name: string): Param {
    const p = this.map.get(name);
    if (!p) {
      const close = closeNames(name, this.names());
      throw new ModelError(
        `no parameter named '${name}'${close.length ? ` (close: ${close.join(', ')})` : ''}`,
      );
    }
    return p;
  }

  /** Names in insertion order. */
  names(): string[] {
    return [...this.map.keys()];
  }

  /** Parameters in insertion order (the live objects, not copies). */
  entries(): Param[] {
    return [...this.map.values()];
  }

  /** Number of parameters (tensors). */
  get size(): number {
    return this.map.size;
  }

  /** Total number of elements over all parameters. */
  totalCount(): number {
    let n = 0;
    for (const p of this.map.values()) n += p.data.length;
    return n;
  }

  /** A deep copy (shapes and data copied). */
  clone(): ParamStore {
    const s = new ParamStore();
    for (const p of this.map.values()) s.set(p.name, [...p.shape], Float32Array.from(p.data));
    return s;
  }

  /**
   * The parameters as a plain object by name (sharing the data). Keys keep insertion order
   * except integer-like names, which JavaScript objects list first.
   * @example
   * const { 'fc.bias': bias } = store.toRecord();
   */
  toRecord(): Record<string, Param> {
    const out: Record<string, Param> = {};
    for (const [n, p] of this.map) out[n] = p;
    return out;
  }

  /**
   * The values as float32 tensors (sharing the data).
   * @param names - which parameters (default all, in order)
   * @example
   * writeSafetensors(path, store.toTensors());
   */
  toTensors(names: Iterable<string> = this.map.keys()): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const n of names) {
      const p = this.get(n);
      out.set(n, { dtype: 'float32', dims: p.shape, data: p.data });
    }
    return out;
  }
}

/** Up to five names close to `name`: same last segment first, then by edit distance. */
function closeNames(name: string, names: string[]): string[] {
  const tail = name.split('.').pop() ?? name;
  const limit = Math.max(2, Math.floor(name.length / 4));
  return names
    .map((n) => ({ n, d: editDistance(name, n), same: n.split('.').pop() === tail }))
    .filter((c) => c.d <= limit || c.same)
    .sort((a, b) => a.d - b.d || Number(b.same) - Number(a.same))
    .slice(0, 5)
    .map((c) => c.n);
}

/** Levenshtein distance (insertions, deletions, substitutions each cost 1). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}
