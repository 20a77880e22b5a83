import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { FeedError, ModelError } from '../util/errors.js';
import type { DType, TensorArray } from '../onnx/dtype.js';
import { cloneGraph, type Dim, type Model, onnxOpset, type ValueInfo } from '../onnx/ir.js';
import { encodeModel, writeModel } from '../onnx/serialize.js';
import { inferShapes } from '../onnx/shapes.js';
import { numel, type Tensor } from '../onnx/tensor.js';

export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  /** ONNX Runtime graph optimisation level; default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Name used in error messages (a file name or a model name). */
  source?: string;
  /**
   * Frees memory as soon as each tensor dies (no CPU arena, no memory pattern): slower,
   * but the peak is what the graph needs, not what the arena has grown to. For one-off
   * runs such as {@link measureShapes}'s probes.
   */
  lowMemory?: boolean;
  /**
   * Whether ONNX Runtime's worker threads spin-wait for the next run (default true). Each
   * session has a pool of its own, so where several sessions take turns (the dense
   * kernels' one session per product shape), one session's spinning threads take the
   * cores from the next: measured, that halved the speed of the band reduction.
   */
  spin?: boolean;
}

/** ONNX Runtime's log levels, quietest last. */
const ORT_LOG_LEVELS = ['verbose', 'info', 'warning', 'error', 'fatal'] as const;
type OrtLogLevel = (typeof ORT_LOG_LEVELS)[number];

/**
 * ONNX Runtime's own log level. Its warnings (unused initializers, shape merges) and its
 * error lines (printed in colour before the error is also thrown) would otherwise reach
 * the terminal ahead of the tool's own message; every error it reports is thrown too, and
 * wrapped below into one line naming the model. So sessions log only fatal failures, and
 * the environment only errors. `DENOISEREP_ORT_LOG=warning` (or verbose, info, error)
 * brings the log back when debugging ONNX Runtime itself.
 */
export function ortLogLevel(): OrtLogLevel {
  const v = process.env.DENOISEREP_ORT_LOG;
  return v && (ORT_LOG_LEVELS as readonly string[]).includes(v) ? (v as OrtLogLevel) : 'fatal';
}

// The environment's level applies from the first session on; errors-only at most.
ort.env.logLevel =
  ORT_LOG_LEVELS.indexOf(ortLogLevel()) < ORT_LOG_LEVELS.indexOf('error') ? ortLogLevel() : 'error';

/**
 * Initializer bytes from which {@link Session.create} hands a model to ONNX Runtime as a
 * temporary file with external data rather than as serialised bytes in memory.
 */
export const SESSION_FILE_BYTES = 64 * 2 ** 20;

function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // a file still mapped by ONNX Runtime on a system that refuses to delete it: leave it
  }
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
    let bytes = 0;
    for (const t of model.graph.initializers.values()) bytes += t.data.byteLength;
    if (bytes >= SESSION_FILE_BYTES) {
      // A large model goes to ONNX Runtime as a file with its tensors as external data,
      // written straight from the tensors: no serialised copy held in memory while the
      // session is made and until the garbage collector frees it (a ViT-B: 0.5 GB less).
      let dir: string | undefined;
      try {
        dir = mkdtempSync(join(tmpdir(), 'denoiserep-session-'));
        const path = join(dir, 'model.onnx');
        writeModel(path, model, { externalData: 'always' });
        return await Session.fromEncoded(model, path, opts);
      } catch (err) {
        if (err instanceof ModelError) throw err;
        // The temporary file could not be written (no space, say): from memory instead.
      } finally {
        if (dir) removeQuietly(dir);
      }
    }
    return Session.fromEncoded(model, encodeModel(model), opts);
  }

  /**
   * Creates a session from a model and its serialised bytes (when the caller has already
   * encoded it, e.g. to key a cache), or the path of a file holding it.
   */
  static async fromEncoded(
    model: Model,
    bytes: Uint8Array | string,
    opts: SessionOptions = {},
  ): Promise<Session> {
    const source = opts.source ?? model.graph.name;
    let inner: ort.InferenceSession;
    const options: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads ?? availableParallelism(),
      graphOptimizationLevel: opts.optimization ?? 'all',
      logSeverityLevel: ORT_LOG_LEVELS.indexOf(ortLogLevel()) as 0 | 1 | 2 | 3 | 4,
      ...(opts.lowMemory ? { enableCpuMemArena: false, enableMemPattern: false } : {}),
      ...(opts.spin === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    };
    try {
      // Two branches for the two overloads of create (a path, or bytes): TypeScript takes
      // no union for them.
      inner =
        typeof bytes === 'string'
          ? await ort.InferenceSession.create(bytes, options)
          : await ort.InferenceSession.create(bytes, options);
    } catch (err) {
      throw new ModelError(`${source}: onnxruntime cannot load the model: ${ortMessage(err)}`, {
        cause: err,
      });
    }
    return new Session(inner, model.graph.inputs, model.graph.outputs, source);
  }

  /**
   * Runs the model.
   * @param feeds - one tensor per graph input, by name
   * @param fetches - output names to fetch (default: all graph outputs)
   * @param into - for some fetched outputs, a tensor of the output's exact dtype and shape
   *   that ONNX Runtime writes into (no new buffer per run: for large outputs fetched on
   *   every batch); the result then holds that same tensor
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
    for (const n of Object.keys(into)) {
      if (!names.includes(n))
        throw new FeedError(`${this.source}: a buffer is given for '${n}', which is not fetched`);
      const t = into[n]!;
      if (t.data.length !== numel(t.dims))
        throw new FeedError(
          `${this.source}: the buffer for output '${n}' has ${t.data.length} elements for dims [${t.dims}]`,
        );
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    const ortFetches: Record<string, ort.Tensor | null> = {};
    for (const n of names) ortFetches[n] = into[n] ? toOrt(into[n]) : null;
    let res: ort.InferenceSession.OnnxValueMapType;
    try {
      res = await this.inner.run(ortFeeds, ortFetches);
    } catch (err) {
      throw new ModelError(`${this.source}: onnxruntime failed: ${ortMessage(err)}`, {
        cause: err,
      });
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

/**
 * ONNX Runtime's error message on one line: its `[ONNXRuntimeError] : 2 : CODE :` prefix
 * and the C++ source locations it embeds (`/onnxruntime_src/…/reshape_helper.h:91
 * onnxruntime::ReshapeHelper::ReshapeHelper(…) cond was false.`) dropped, whitespace
 * collapsed, and the length capped, so the tool's error stays a single readable line.
 * @param err - what onnxruntime-node threw
 * @example
 * ortMessage(new Error('[ONNXRuntimeError] : 1 : FAIL : bad\nthing')); // 'bad thing'
 */
export function ortMessage(err: unknown): string {
  let m = err instanceof Error ? err.message : String(err);
  m = m.replace(/\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*/g, '');
  // "<path>:<line> <qualified function>(<args>) <condition> was false." → ''
  m = m.replace(/\S*onnxruntime_src\S*:\d+\s+\S+\(.*?\)\s+.*?was false\.\s*/g, '');
  m = m.replace(/\S*onnxruntime_src\S*:\d+\s+\S+\(.*?\)\s*/g, '');
  m = m.replace(/\s+/g, ' ').trim();
  return m.length > 400 ? `${m.slice(0, 397)}...` : m;
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
    inferred = undefined; // a model whose rules fail may still run; ORT knows the types
  }
  for (const n of names) {
    if (graph.outputs.some((o) => o.name === n)) continue;
    const info = inferred?.get(n) ?? graph.valueInfo.get(n);
    const shape: Dim[] | null = info?.shape ? info.shape.map(() => null) : null;
    const dtype = dtypes?.[n] ?? info?.dtype;
    // A value of unknown type is fetched untyped: ONNX Runtime knows its type.
    graph.outputs.push({ name: n, dtype: dtype ?? 'float32', shape, untyped: !dtype });
  }
  return { ...model, graph };
}
