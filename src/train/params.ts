import { ModelError } from '../errors.js';
import type { Tensor } from '../onnx/tensor.js';

/** A named float32 tensor that training updates in place. */
export interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * Parameters (and buffers) by name, in a fixed order. Parameters live here, in
 * TypeScript, between ONNX Runtime steps.
 * @example
 * const store = ParamStore.fromInitializers(model.graph.initializers, params);
 * store.get('head.weight').data[0] = 0;
 */
export class ParamStore {
  private readonly map = new Map<string, Param>();

  /** Copies the named float32 initializers into a new store. */
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

  /** Copies tensors into a new store. */
  static fromTensors(tensors: Map<string, Tensor>): ParamStore {
    return ParamStore.fromInitializers(tensors, tensors.keys());
  }

  set(name: string, shape: number[], data: Float32Array): void {
    this.map.set(name, { name, shape, data });
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  /** The parameter; fails naming it and listing similar names. */
  get(name: string): Param {
    const p = this.map.get(name);
    if (!p) {
      const tail = name.split('.').pop() ?? name;
      const close = this.names()
        .filter((n) => n.endsWith(tail))
        .slice(0, 5);
      throw new ModelError(
        `no parameter named '${name}'${close.length ? ` (similar: ${close.join(', ')})` : ''}`,
      );
    }
    return p;
  }

  names(): string[] {
    return [...this.map.keys()];
  }

  entries(): Param[] {
    return [...this.map.values()];
  }

  /** Total number of elements. */
  totalCount(): number {
    let n = 0;
    for (const p of this.map.values()) n += p.data.length;
    return n;
  }

  /** A deep copy. */
  clone(): ParamStore {
    const s = new ParamStore();
    for (const p of this.map.values()) s.set(p.name, [...p.shape], Float32Array.from(p.data));
    return s;
  }

  /** The values as tensors (sharing the data). */
  toTensors(names: Iterable<string> = this.map.keys()): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const n of names) {
      const p = this.get(n);
      out.set(n, { dtype: 'float32', dims: p.shape, data: p.data });
    }
    return out;
  }
}
