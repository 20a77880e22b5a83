import { buildGradientGraph, type GradientGraph } from '../autodiff/engine.js';
import { FeedError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { Session, type SessionOptions } from '../runtime/session.js';

/** Where a training step reads parameter and buffer values from and writes buffers to. */
export interface TensorSource {
  get(name: string): { shape: number[]; data: Float32Array };
}

export interface TrainStepOptions {
  /** Forward graph that computes the scalar loss. */
  model: Model;
  loss: string;
  /** Parameters to differentiate (trainable now). */
  trainable: string[];
  /**
   * Initializers fed at every step without gradients: frozen parameters that change
   * between phases, and buffers (running statistics). Everything else stays constant.
   */
  fed?: string[];
  /** Buffer name -> graph value holding its new value after the step (batch norm). */
  bufferUpdates?: Map<string, string>;
  /** Other values to fetch every step (logits, per-layer losses). */
  extraOutputs?: string[];
  session?: SessionOptions;
}

export interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  extras: Record<string, Tensor>;
}

/**
 * One compiled training step: the forward graph with its gradient graph in a single ONNX
 * Runtime session. Parameters and buffers are graph inputs, fed from TypeScript at each
 * step; gradients and updated buffers come back as outputs.
 *
 * @example
 * const step = await TrainStep.create({ model, loss: 'loss', trainable: params, fed: buffers });
 * const { loss, grads } = await step.run({ input, target }, store);
 * optimizer.step(grads, lr);
 */
export class TrainStep {
  private constructor(
    readonly graph: GradientGraph,
    private readonly session: Session,
    private readonly opts: TrainStepOptions,
    readonly lifted: string[],
  ) {}

  static async create(opts: TrainStepOptions): Promise<TrainStep> {
    const fed = opts.fed ?? [];
    const updates = opts.bufferUpdates ?? new Map<string, string>();
    const lifted = [...opts.trainable, ...fed].filter((n) => opts.model.graph.initializers.has(n));
    const graph = buildGradientGraph(opts.model, {
      loss: opts.loss,
      wrt: opts.trainable,
      liftToInputs: lifted,
      extraOutputs: [...new Set([...(opts.extraOutputs ?? []), ...updates.values()])],
    });
    const session = await Session.create(graph.model, opts.session);
    return new TrainStep(graph, session, opts, lifted);
  }

  /** Names of the data inputs the caller must feed (everything not a parameter or buffer). */
  dataInputs(): string[] {
    const lifted = new Set(this.lifted);
    return this.graph.model.graph.inputs.map((i) => i.name).filter((n) => !lifted.has(n));
  }

  /**
   * Runs forward and backward once. Buffer updates are written back into `params`.
   * @param data - data inputs (images, targets, masks)
   * @param params - parameter and buffer values
   */
  async run(data: Record<string, Tensor>, params: TensorSource): Promise<StepResult> {
    const feeds: Record<string, Tensor> = { ...data };
    for (const name of this.lifted) {
      const p = params.get(name);
      feeds[name] = { dtype: 'float32', dims: p.shape, data: p.data };
    }
    const out = await this.session.run(feeds);
    const lossT = out[this.opts.loss];
    if (!lossT) throw new FeedError(`training step produced no loss '${this.opts.loss}'`);
    const grads = new Map<string, Float32Array>();
    for (const [p, o] of Object.entries(this.graph.gradOutputs))
      grads.set(p, out[o]!.data as Float32Array);
    for (const [buffer, value] of this.opts.bufferUpdates ?? []) {
      params.get(buffer).data.set(out[value]!.data as Float32Array);
    }
    return { loss: Number(lossT.data[0]), grads, extras: out };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
