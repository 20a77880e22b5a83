/**
 * Shapes from ONNX Runtime for values the project's shape rules cannot type: outputs of
 * contrib ops (`com.microsoft`), model-local functions, or ai.onnx ops without a rule.
 * The model is run on a small all-zero input with those values as extra outputs; what ORT
 * produces is recorded as value_info, after which shape inference types everything
 * downstream by its rules.
 */
import { ModelError } from '../util/errors.js';
import { allocArray, type DType, DTYPE_SIZE } from '../onnx/dtype.js';
import {
  cloneGraph,
  type Dim,
  type Model,
  onnxOpset,
  producers,
  type ValueInfo,
} from '../onnx/ir.js';
import { hasShapeRule, inferShapesDetailed } from '../onnx/shapes.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session } from './session.js';

/** Options of {@link measureShapes}. */
export interface MeasureOptions {
  /** Name for messages (the model file). */
  source?: string;
  /**
   * Sizes for the inputs' symbolic dims. Default: a symbol on axis 0 is a batch (1, then
   * 2 to see which dims follow it); any other symbol is 224 (then 256 to see which dims
   * follow it; if the model refuses 256, dims are kept only where no such symbol could
   * reach them).
   */
  symbols?: Record<string, number>;
  /** Intra-op threads of the probing session (default 1: the inputs are tiny). */
  threads?: number;
  /**
   * Largest total input size, in bytes at batch 1, that the probe feeds (default
   * {@link MAX_PROBE_INPUT_BYTES}): activations grow with the input, and a model whose
   * declared input is larger is refused rather than run.
   */
  maxInputBytes?: number;
}

/**
 * Default limit of the probe's input: 32 MiB, a 3 x 1024 x 2048 float32 image at batch 1
 * with room to spare, so the probe's own memory stays well under a gigabyte for the
 * vision models this tool is for.
 */
export const MAX_PROBE_INPUT_BYTES = 2 ** 25;

/** What {@link measureShapes} did. */
export interface MeasureResult {
  /** The model, with the measured values added to its value_info (the same object if none). */
  model: Model;
  /** Values whose type was measured. */
  measured: string[];
}

/** Default size of a non-batch symbolic dim in the probe (and the second probe's). */
const SPATIAL = [224, 256] as const;

/**
 * Completes a model's types with ONNX Runtime: when shape inference stops at nodes
 * without a shape rule, runs the model once (or twice, three times to tell symbolic dims
 * from static ones) on zeros with those nodes' outputs as extra outputs, and records
 * their dtypes and shapes as value_info. A dim that follows the batch symbol is written
 * symbolically (`N`, `N*4`); one that follows another symbol is left unknown. A model
 * whose types are all inferred is returned as is, without running anything.
 * @param model - the model
 * @param opts - source name, symbol sizes, threads
 * @example
 * const { model: typed, measured } = await measureShapes(await readModel('mnv3.onnx'));
 */
export async function measureShapes(
  model: Model,
  opts: MeasureOptions = {},
): Promise<MeasureResult> {
  const source = opts.source ?? model.graph.name;
  let unknown: ReturnType<typeof inferShapesDetailed>['unknown'];
  try {
    ({ unknown } = inferShapesDetailed(model.graph, onnxOpset(model)));
  } catch (err) {
    // A shape rule's verdict (the model is inconsistent), named with the file.
    if (err instanceof ModelError && !err.message.startsWith(`${source}: `))
      throw new ModelError(`${source}: ${err.message}`, { cause: err });
    throw err;
  }
  // Measure only the outputs of the rule-less nodes themselves; the rules then carry the
  // types on from there.
  const prod = producers(model.graph);
  const roots = unknown.filter((u) => !hasShapeRule(prod.get(u.value)!)).map((u) => u.value);
  if (roots.length === 0) return { model, measured: [] };

  const batchSyms = new Set<string>();
  const otherSyms = new Set<string>();
  for (const inp of model.graph.inputs) {
    if (!inp.shape)
      throw new ModelError(
        `${source}: cannot run the model to measure the shapes after node '${unknown[0]!.node.name}' (${unknown[0]!.node.opType}): input '${inp.name}' has no declared rank`,
      );
    inp.shape.forEach((d, k) => {
      if (typeof d === 'string' && opts.symbols?.[d] === undefined)
        (k === 0 ? batchSyms : otherSyms).add(d);
    });
  }
  for (const s of batchSyms) otherSyms.delete(s);
  const bind =
    (batch: number, other: number) =>
    (d: Dim): number => {
      if (typeof d === 'number') return d;
      if (d === null) return 1;
      return opts.symbols?.[d] ?? (batchSyms.has(d) ? batch : other);
    };

  const limit = opts.maxInputBytes ?? MAX_PROBE_INPUT_BYTES;
  let inputBytes = 0;
  for (const inp of model.graph.inputs)
    inputBytes += inp
      .shape!.map(bind(1, SPATIAL[0]))
      .reduce((a, b) => a * b, DTYPE_SIZE[inp.dtype]);
  if (inputBytes > limit) {
    const u = unknown[0]!.node;
    throw new ModelError(
      `${source}: node '${u.name}' (${u.domain ? `${u.domain}.` : ''}${u.opType}) has no shape rule, and measuring its output with ONNX Runtime would feed ${(inputBytes / 2 ** 20).toFixed(0)} MB of input at batch 1 (limit ${(limit / 2 ** 20).toFixed(0)} MB)`,
    );
  }

  const probe: Model = {
    ...model,
    graph: { ...cloneGraph(model.graph), valueInfo: new Map(model.graph.valueInfo) },
  };
  for (const r of roots) {
    // No declared type: ONNX Runtime infers the output's type itself.
    if (!probe.graph.outputs.some((o) => o.name === r))
      probe.graph.outputs.push({ name: r, dtype: 'float32', shape: null, untyped: true });
  }
  const session = await Session.create(probe, {
    threads: opts.threads ?? 1,
    optimization: 'disabled',
    source,
    lowMemory: true,
  });
  const run = async (batch: number, other: number) => {
    const feeds: Record<string, Tensor> = {};
    for (const inp of model.graph.inputs) {
      const dims = inp.shape!.map(bind(batch, other));
      feeds[inp.name] = {
        dtype: inp.dtype,
        dims,
        data: allocArray(
          inp.dtype,
          dims.reduce((a, b) => a * b, 1),
        ),
      };
    }
    // Only the dims are kept, so each run's tensors can be freed before the next.
    const out = await session.run(feeds, roots);
    return Object.fromEntries(roots.map((r) => [r, { dtype: out[r]!.dtype, dims: out[r]!.dims }]));
  };
  type Dims = Record<string, { dtype: string; dims: number[] }>;
  let base: Dims;
  let batched: Dims | undefined;
  let varied: Dims | undefined;
  let otherFixed = otherSyms.size === 0;
  try {
    base = await run(1, SPATIAL[0]);
    if (batchSyms.size) batched = await run(2, SPATIAL[0]);
    if (!otherFixed) {
      try {
        varied = await run(1, SPATIAL[1]);
        otherFixed = true;
      } catch {
        varied = undefined; // the model takes only one size: dims stay unknown below
      }
    }
  } finally {
    await session.release();
  }
  const batchSym = batchSyms.size === 1 ? [...batchSyms][0]! : undefined;
  const graph = cloneGraph(model.graph);
  const measured: string[] = [];
  for (const r of roots) {
    const t = base[r]!;
    const dtype = t.dtype as DType;
    if (!(dtype in DTYPE_SIZE)) continue; // a type the IR does not model (string, bfloat16)
    const shape: Dim[] = t.dims.map((d, k) => {
      const b = batched?.[r]?.dims[k];
      const v = varied?.[r]?.dims[k];
      if (!otherFixed) return null;
      if (varied && v !== d) return null;
      if (b === undefined || b === d) return d;
      // Follows the batch: N·(d at batch 1) when it doubled with the batch.
      if (batchSym && b === 2 * d) return d === 1 ? batchSym : `${batchSym}*${d}`;
      return null;
    });
    const info: ValueInfo = { name: r, dtype, shape };
    graph.valueInfo.set(r, info);
    measured.push(r);
  }
  return { model: { ...model, graph }, measured };
}
