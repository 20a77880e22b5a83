import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { FeedError, ModelError } from '../util/errors.js';
import type { DType, TensorArray } from '../onnx/dtype.js';
import { cloneGraph, type Dim, type Model, onnxOpset, type ValueInfo } from '../onnx/ir.js';
import { encodeModel } from '../onnx/serialize.js';
import { inferShapes } from '../onnx/shapes.js';
import { numel, type Tensor } from '../onnx/tensor.js';

export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  /** ONNX Runtime graph optimisation level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Name used in error messages (a file name or a model name). */
  source?: string;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
};

/** Converts a tensor to an onnxruntime tensor (sharing the buffer). */
export function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new FeedError(`dtype ${t.dtype} is not supported by onnxruntime`);
  return new ort.Tensor(type, t.data as never, t.dims);
}

/** Converts an onnxruntime tensor back (sharing the buffer). */
export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = (t.type === 'bool' ? 'bool' : t.type) as DType;
  return { dtype, dims: [...t.dims], data: t.data as TensorArray };
}

/**
 * One onnxruntime-node inference session over an IR model, with feeds checked by name,
 * dtype and shape before they reach the native binding.
 *
 * @example
 * const s = await Session.create(model, { threads: 2 });
 * const { y } = await s.run({ x: float32([1, 4], [1, 2, 3, 4]) });
 */
export class Session {
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  readonly source: string;
  private constructor(
    private readonly inner: ort.InferenceSession,
    inputs: ValueInfo[],
    outputs: ValueInfo[],
    source: string,
  ) {
    this.inputs = inputs;
    this.outputs = outputs;
    this.source = source;
  }

  /**
   * Creates a session.
   * @param model - the model (serialised here)
   * @param opts - threads, optimisation level, source name for messages
   */
  static async create(model: Model, opts: SessionOptions = {}): Promise<Session> {
    return Session.fromEncoded(model, encodeModel(model), opts);
  }

  /**
   * Creates a session from a model and its serialised bytes (when the caller has already
   * encoded it, e.g. to key a cache).
   */
  static async fromEncoded(
    model: Model,
    bytes: Uint8Array,
    opts: SessionOptions = {},
  ): Promise<Session> {
    const source = opts.source ?? model.graph.name;
    let inner: ort.InferenceSession;
    try {
      inner = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: opts.threads ?? availableParallelism(),
        graphOptimizationLevel: opts.optimization ?? 'all',
      });
    } catch (err) {
      throw new ModelError(`${source}: onnxruntime cannot load the model: ${errText(err)}`, {
        cause: err,
      });
    }
    return new Session(inner, model.graph.inputs, model.graph.outputs, source);
  }

  /**
   * Runs the model.
   * @param feeds - one tensor per graph input, by name
   * @param fetches - output names to fetch (default: all graph outputs)
   * @param into - tensors (of the outputs' exact dtype and shape) that ONNX Runtime writes
   *   those outputs into, instead of allocating them: for large outputs reused across runs
   */
  async run(
    feeds: Record<string, Tensor>,
    fetches?: string[],
    into: Record<string, Tensor> = {},
  ): Promise<Record<string, Tensor>> {
    checkFeeds(this.source, this.inputs, feeds);
    const names = fetches ?? this.outputs.map((o) => o.name);
    for (const n of names) {
      if (!this.outputs.some((o) => o.name === n)) {
        throw new FeedError(
          `${this.source}: no output named '${n}' (outputs: ${this.outputs.map((o) => o.name).join(', ')})`,
        );
      }
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    let res: ort.InferenceSession.OnnxValueMapType;
    const targets: Record<string, ort.Tensor | null> = {};
    for (const n of names) targets[n] = into[n] ? toOrt(into[n]) : null;
    try {
      res = await this.inner.run(ortFeeds, targets);
    } catch (err) {
      throw new ModelError(`${this.source}: onnxruntime failed: ${errText(err)}`, { cause: err });
    }
    const out: Record<string, Tensor> = {};
    for (const n of names) out[n] = into[n] ?? fromOrt(res[n] as ort.Tensor);
    return out;
  }

  /** Frees the native session. */
  async release(): Promise<void> {
    await this.inner.release();
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks feeds against the graph inputs: every input given, no unknown name, dtype,
 * rank and static dims equal, data length equal to the dims, and each symbolic dim
 * bound to one size across inputs. Throws a FeedError naming the input.
 */
export function checkFeeds(
  source: string,
  inputs: readonly ValueInfo[],
  feeds: Record<string, Tensor>,
): void {
  const expected = new Map(inputs.map((i) => [i.name, i]));
  for (const name of Object.keys(feeds)) {
    if (!expected.has(name)) {
      throw new FeedError(
        `${source}: unknown input '${name}' (inputs: ${[...expected.keys()].join(', ')})`,
      );
    }
  }
  const symbols = new Map<string, [number, string]>();
  for (const info of inputs) {
    const t = feeds[info.name];
    if (!t) throw new FeedError(`${source}: missing input '${info.name}' (${describe(info)})`);
    if (t.dtype !== info.dtype) {
      throw new FeedError(`${source}: input '${info.name}' is ${t.dtype}, expected ${info.dtype}`);
    }
    if (t.data.length !== numel(t.dims)) {
      throw new FeedError(
        `${source}: input '${info.name}' has ${t.data.length} elements for dims [${t.dims}]`,
      );
    }
    if (!info.shape) continue;
    if (t.dims.length !== info.shape.length) {
      throw new FeedError(
        `${source}: input '${info.name}' has shape [${t.dims}], expected ${describe(info)}`,
      );
    }
    info.shape.forEach((d, k) => {
      const got = t.dims[k]!;
      if (typeof d === 'number' && d !== got) {
        throw new FeedError(
          `${source}: input '${info.name}' has shape [${t.dims}], expected ${describe(info)} (dim ${k})`,
        );
      }
      if (typeof d === 'string') {
        const seen = symbols.get(d);
        if (seen && seen[0] !== got) {
          throw new FeedError(
            `${source}: input '${info.name}' dim ${k} ('${d}') is ${got} but input '${seen[1]}' set '${d}' = ${seen[0]}`,
          );
        }
        symbols.set(d, [got, info.name]);
      }
    });
  }
}

function describe(info: ValueInfo): string {
  return `${info.dtype}[${info.shape ? info.shape.map((d) => d ?? '?').join(', ') : '...'}]`;
}

/**
 * A copy of the model that also outputs the named intermediate values (for capturing
 * layer inputs). Types come from shape inference when possible, else float32 of unknown
 * shape.
 */
export function withExtraOutputs(
  model: Model,
  names: string[],
  dtypes?: Record<string, DType>,
): Model {
  const graph = cloneGraph(model.graph);
  let inferred: Map<string, ValueInfo> | undefined;
  try {
    inferred = inferShapes(graph, onnxOpset(model));
  } catch {
    inferred = undefined; // models with ops we cannot infer still run; ORT knows the types
  }
  for (const n of names) {
    if (graph.outputs.some((o) => o.name === n)) continue;
    const info = inferred?.get(n) ?? graph.valueInfo.get(n);
    const shape: Dim[] | null = info?.shape ? info.shape.map(() => null) : null;
    graph.outputs.push({ name: n, dtype: dtypes?.[n] ?? info?.dtype ?? 'float32', shape });
  }
  return { ...model, graph };
}
