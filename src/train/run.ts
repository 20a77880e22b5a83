/**
 * THE training loop. Every trainer of the project (supervised pretraining and fine-tuning,
 * controls, label-free and label-augmented DenoiseRep, DenoiseRep~, a diffusion model) is
 * a configuration of {@link runTraining}: one or more phases, each with
 * - an objective (a compiled loss-and-gradient step and the feeds of a batch),
 * - the parameters it reads and the optimiser that updates them (its trainable set),
 * - a learning-rate schedule over the phase's own steps,
 * - the seeded streams its batches, augmentation, dropout and noise come from,
 * and a rule that says which phase runs each epoch (alternating phases). The loop does the
 * rest in one place: batches, feeds, stepping, non-finite checks, logging, the compute
 * record, checkpoints and resume.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  truncateSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NonFiniteError, ResumeMismatchError, UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Tensor } from '../onnx/tensor.js';
import type { ParamStore } from '../models/params.js';
import { Rng } from '../util/rng.js';
import {
  type CheckpointState,
  loadCheckpoint,
  type LoadedCheckpoint,
  removeCheckpointLeftovers,
  saveCheckpoint,
  type WriteHook,
} from './checkpoint.js';
import {
  ComputeTracker,
  type ComputeRecord,
  type ComputeState,
  type ParamRole,
} from './compute.js';
import { clipGradNorm, type Optimizer } from './optim.js';
import type { LrSchedule } from './schedule.js';
import type { StepResult, TensorSource } from './step.js';
import {
  type EpochStreams,
  type RngState,
  setStreamStates,
  type StreamPlan,
  streamStates,
} from './streams.js';

/** What an objective gives the loop for one epoch. */
export interface EpochStep {
  /** Forward and backward on one batch (a {@link TrainStep}'s `run`). */
  run(feeds: Record<string, Tensor>, params: TensorSource): Promise<StepResult>;
  /** The data feeds of a batch; random draws come from the epoch's streams. */
  feeds(batch: Int32Array, streams: EpochStreams): Record<string, Tensor>;
  /** Scalar extra outputs averaged over the epoch (per-layer losses), by output name. */
  tracked?: string[];
  /** Called at the end of the epoch (for a step compiled for this epoch only). */
  release?(): Promise<void>;
}

/** A task loss: the step of each epoch and how to feed it. */
export interface Objective {
  /** The step of epoch `epoch` (compiled once and reused, or built for the epoch). */
  open(epoch: number): Promise<EpochStep>;
  /** Releases what `open` kept across epochs. */
  close?(): Promise<void>;
  /**
   * False when a step's result depends on how many steps its compiled graph ran before
   * (noise drawn inside the graph): checkpoints then fall on epoch ends only.
   */
  resumableMidEpoch?: boolean;
}

/** One phase of a run: an objective, a trainable set, a schedule and streams. */
export interface Phase {
  /** Name in logs, records, checkpoints (one optimiser state per phase). */
  name: string;
  /** What its steps update, for the compute record. */
  updates: ParamRole[];
  objective: Objective;
  /** Where the step reads parameters and buffers (the optimiser updates them in place). */
  params: TensorSource;
  optimizer: Optimizer;
  /** Learning rate at the phase's step k (0-based, counted over all its epochs). */
  lr: LrSchedule;
  /** The batches of an epoch, cut from its order stream. */
  batches(order: Rng, epoch: number): Int32Array[];
  streams: StreamPlan;
  /** Clip the global gradient norm to this before the update. */
  clipNorm?: number;
  /** First value of the phase's step counter (default 0). */
  firstStep?: number;
  /** Called after each update with the phase's step count (an EMA of the weights). */
  afterUpdate?(step: number): void;
}

/** One optimiser step as the loop reports it. */
export interface StepInfo {
  phase: string;
  updates: readonly ParamRole[];
  epoch: number;
  /** The phase's step count after this step. */
  step: number;
  /** Steps of all phases after this step. */
  globalStep: number;
  loss: number;
  lr: number;
  batch: Int32Array;
  feeds: Record<string, Tensor>;
  imagesPerSecond: number;
}

/** One epoch as the loop measured it. */
export interface EpochSummary {
  epoch: number;
  phase: string;
  /** Mean loss over the epoch's samples. */
  loss: number;
  /** Learning rate of its last step. */
  lr: number;
  seconds: number;
  images: number;
  /** Mean of each tracked output over the epoch's samples. */
  tracked: Record<string, number>;
}

/** Where and how a run keeps checkpoints. */
export interface CheckpointOptions {
  /** The checkpoint link, `<run folder>/checkpoint`. */
  path: string;
  /** Also checkpoint every this many steps inside an epoch (0: at epoch ends only). */
  every?: number;
  /** Called at every write boundary (tests interrupt the write there). */
  hook?: WriteHook;
}

/** What a run is, recorded with its checkpoints and checked on resume. */
export interface RunIdentity {
  /** The model (a preset name): a checkpoint of another model is refused. */
  preset: string;
  presetOptions?: CheckpointState['presetOptions'];
  config: unknown;
  /** Resolved hyper-parameters: a resume with other values is refused unless overridden. */
  hyper: Record<string, unknown>;
}

/** Continue a run from a checkpoint. */
export interface ResumeOptions {
  /** A checkpoint folder or a training output folder. */
  path: string;
  /** Accept changed hyper-parameters. */
  override?: boolean;
  /** Hyper-parameters of a checkpoint that did not record them, from its config. */
  hyperOf?: (config: unknown) => Record<string, unknown>;
}

/** A training run: phases, epochs, what to do at epoch ends, checkpoints. */
export interface TrainingRun<R extends object = EpochSummary> {
  phases: Phase[];
  epochs: number;
  /**
   * Index of epoch e's phase in `phases` (default 0: one phase); null: the epoch trains
   * nothing and leaves no record (a control's counterpart of a denoiser-only phase).
   */
  phaseOf?: (epoch: number) => number | null;
  /** Index of the first epoch (default 0). */
  firstEpoch?: number;
  /** Stop after this many epochs of the schedule (an interruption, for resume tests). */
  stopAfter?: number;
  /** Tensor sets saved with checkpoints and restored on resume; `weights` is the main one. */
  stores?: Record<string, ParamStore>;
  /** Step and epoch records. */
  log?: (rec: Record<string, unknown>) => void;
  /** A JSONL file the records are appended to. */
  logFile?: string;
  onStep?: (s: StepInfo) => void;
  /** The history record of an epoch (evaluation goes here; default: the summary). */
  epochRecord?: (s: EpochSummary) => Promise<R> | R;
  /** Needed with `checkpoint` or `resume`. */
  identity?: RunIdentity;
  checkpoint?: CheckpointOptions;
  resume?: ResumeOptions;
}

/** What {@link runTraining} returns. */
export interface TrainingOutcome<R> {
  history: R[];
  compute: ComputeRecord;
  /** Step counters by phase. */
  steps: Record<string, number>;
}

/** Where a run stands, as a checkpoint stores it (`state.loop`). */
interface LoopState {
  /** Where to continue: this epoch, from this batch. */
  next: { epoch: number; batch: number };
  counters: Record<string, number>;
  globalStep: number;
  compute: ComputeState;
  /** Each phase's stream-plan state at the start of `next.epoch`. */
  plans: Record<string, RngState | null>;
  /** Inside an epoch: its streams and sums so far. */
  inside?: {
    streams: Record<string, RngState>;
    lossSum: number;
    seen: number;
    lr: number;
    sums: number[];
    /** Wall seconds the epoch had run when saved (absent in older checkpoints). */
    seconds?: number;
  };
  logBytes?: number;
}

/** Sums of an epoch in progress. */
interface EpochSums {
  lossSum: number;
  seen: number;
  lr: number;
  sums: Float64Array;
}

/**
 * Runs a training schedule: for each epoch, its phase's objective is opened, the batches
 * are cut from the phase's order stream, and for each batch the loop builds the feeds,
 * runs the step, stops on a non-finite loss, gradient or parameter, clips, steps the
 * optimiser at the phase's learning rate and records the step. Epoch ends produce a
 * history record and a checkpoint. See {@link TrainingRun} for what varies.
 * @param run - phases, epochs, logging, checkpoints, resume
 * @returns the history, the compute record and the step counters
 * @example
 * const { compute } = await runTraining({
 *   epochs: 2,
 *   phases: [{ name: 'ddpm', updates: ['backbone'], objective, params: store, optimizer,
 *     lr: constantLr(1e-4), batches: (order) => epochBatches(n, 64, order),
 *     streams: separateStreams(seed) }],
 * });
 */
export async function runTraining<R extends object = EpochSummary>(
  run: TrainingRun<R>,
): Promise<TrainingOutcome<R>> {
  const loop = new Loop(run);
  loop.start();
  try {
    await loop.epochs();
  } finally {
    for (const p of run.phases) await p.objective.close?.();
  }
  return loop.outcome();
}

class Loop<R extends object> {
  private readonly counters: Record<string, number> = {};
  private globalStep = 0;
  private compute: ComputeTracker;
  private readonly history: R[] = [];
  private next = { epoch: 0, batch: 0 };
  private inside?: LoopState['inside'];
  /** Global step of the newest checkpoint written or resumed from (null: none). */
  private lastSaved: number | null = null;

  constructor(private readonly run: TrainingRun<R>) {
    if (!run.phases.length) throw new UsageError('a training run needs at least one phase');
    const names = new Set(run.phases.map((p) => p.name));
    if (names.size !== run.phases.length)
      throw new UsageError('training phases need distinct names');
    for (const p of run.phases) this.counters[p.name] = p.firstStep ?? 0;
    this.next.epoch = run.firstEpoch ?? 0;
    const seedPhase = run.phases.find((p) => p.updates.includes('backbone')) ?? run.phases[0]!;
    this.compute = new ComputeTracker(seedPhase.streams.seed);
  }

  private phaseOf(epoch: number): Phase | null {
    const i = this.run.phaseOf ? this.run.phaseOf(epoch) : 0;
    if (i === null) return null;
    const p = this.run.phases[i];
    if (!p) throw new UsageError(`epoch ${epoch}: no training phase ${i}`);
    return p;
  }

  /** Restores a checkpoint when resuming. */
  start(): void {
    const r = this.run.resume;
    const logFile = this.run.logFile;
    if (logFile) mkdirSync(dirname(logFile), { recursive: true });
    if (!r) {
      // A new run starts its own log (an abandoned run's lines would interleave with it).
      if (logFile && existsSync(logFile)) truncateSync(logFile, 0);
      return;
    }
    const ck = loadCheckpoint(r.path);
    const c = this.run.checkpoint;
    const id = this.run.identity;
    if (id && ck.state.preset !== id.preset)
      throw new UsageError(`${ck.dir} is a checkpoint of ${ck.state.preset}, not of ${id.preset}`);
    if (id) checkHyper(ck, id.hyper, r);
    this.restoreTensors(ck);
    if (ck.state.loop) this.restoreLoop(ck, ck.state.loop as LoopState);
    else this.restoreFirstLayout(ck);
    this.history.push(...(ck.state.history as R[]));
    this.lastSaved = this.globalStep;
    // The log of the run being continued is cut back to the checkpoint.
    if (c && logFile && resolve(ck.dir) === resolve(c.path)) truncateLog(logFile, ck.state);
    if (c) removeCheckpointLeftovers(c.path);
  }

  private restoreTensors(ck: LoadedCheckpoint): void {
    for (const [key, store] of Object.entries(this.run.stores ?? {})) {
      const src = key === 'weights' ? ck.tensors : ck.extra[key];
      if (!src) throw new UsageError(`${ck.dir}: no tensor set '${key}'`);
      for (const n of store.names()) {
        const t = src.get(n);
        if (!t || t.data.length !== store.get(n).data.length) {
          throw new UsageError(`${ck.dir}: '${n}' is missing or has another shape`);
        }
        store.get(n).data.set(t.data as Float32Array);
      }
    }
  }

  private restoreLoop(ck: LoadedCheckpoint, s: LoopState): void {
    for (const p of this.run.phases) {
      const snap = ck.optimizers[p.name];
      if (snap) p.optimizer.restore(snap);
      else if ((s.counters[p.name] ?? 0) > (p.firstStep ?? 0))
        throw new UsageError(`${ck.dir}: no optimiser state for phase '${p.name}'`);
      if (s.counters[p.name] !== undefined) this.counters[p.name] = s.counters[p.name]!;
      if (s.plans[p.name] !== undefined) p.streams.setState(s.plans[p.name]!);
    }
    this.globalStep = s.globalStep;
    this.next = { ...s.next };
    this.inside = s.inside;
    this.compute = new ComputeTracker(s.compute.dataOrderSeed, s.compute);
  }

  /** A checkpoint of the first layout: one phase, the JSON optimiser state, epoch ends. */
  private restoreFirstLayout(ck: LoadedCheckpoint): void {
    const p = this.run.phases[0]!;
    if (ck.state.optimizer) p.optimizer.loadState(ck.state.optimizer);
    const start = ck.state.epoch + 1;
    const steps = ck.state.globalStep ?? start * p.batches(new Rng(0), 0).length;
    this.counters[p.name] = steps;
    this.globalStep = steps;
    this.next = { epoch: start, batch: 0 };
    const t = new ComputeTracker(p.streams.seed, {
      steps: { backbone: 0, denoisers: 0 },
      lr: { backbone: null, denoisers: null },
      dataOrderSeed: p.streams.seed,
      trace: null,
    });
    const s = t.state();
    for (const role of p.updates) {
      s.steps[role] = steps;
      s.lr[role] = steps > 0 ? [p.lr(0), p.lr(steps - 1)] : null;
    }
    this.compute = new ComputeTracker(s.dataOrderSeed, s);
  }

  async epochs(): Promise<void> {
    const end = Math.min(
      (this.run.firstEpoch ?? 0) + this.run.epochs,
      (this.run.firstEpoch ?? 0) + (this.run.stopAfter ?? this.run.epochs),
    );
    while (this.next.epoch < end) {
      const epoch = this.next.epoch;
      const phase = this.phaseOf(epoch);
      if (!phase) {
        this.next = { epoch: epoch + 1, batch: 0 };
        continue;
      }
      const summary = await this.epoch(epoch, phase);
      const rec = this.run.epochRecord ? await this.run.epochRecord(summary) : (summary as R);
      this.history.push(rec);
      this.logLine({ kind: 'epoch', ...rec });
      this.next = { epoch: epoch + 1, batch: 0 };
      this.inside = undefined;
      this.save(epoch);
    }
  }

  /** One epoch of one phase. */
  private async epoch(epoch: number, phase: Phase): Promise<EpochSummary> {
    let t0 = Date.now();
    const planStart = phase.streams.state();
    const streams = phase.streams.epoch(epoch);
    const batches = phase.batches(streams.order, epoch);
    const step = await phase.objective.open(epoch);
    const tracked = step.tracked ?? [];
    const sums: EpochSums = { lossSum: 0, seen: 0, lr: 0, sums: new Float64Array(tracked.length) };
    let first = 0;
    if (this.inside && this.next.epoch === epoch) {
      const inside = this.inside;
      setStreamStates(streams, inside.streams);
      sums.lossSum = inside.lossSum;
      sums.seen = inside.seen;
      sums.lr = inside.lr;
      sums.sums = Float64Array.from(inside.sums);
      // The epoch's time before the checkpoint counts, or a resumed epoch would report
      // all its images over the resumed part's seconds.
      t0 -= 1000 * (inside.seconds ?? 0);
      first = this.next.batch;
    }
    const every = this.run.checkpoint?.every ?? 0;
    const midEpoch = every > 0 && phase.objective.resumableMidEpoch !== false;
    let tStep = Date.now();
    try {
      for (let j = first; j < batches.length; j++) {
        const batch = batches[j]!;
        const feeds = step.feeds(batch, streams);
        await this.step(phase, epoch, batch, feeds, step, sums, tStep);
        tStep = Date.now();
        if (midEpoch && this.globalStep % every === 0 && j + 1 < batches.length) {
          this.next = { epoch, batch: j + 1 };
          this.inside = {
            lossSum: sums.lossSum,
            seen: sums.seen,
            lr: sums.lr,
            sums: Array.from(sums.sums),
            streams: streamStates(streams),
            seconds: (Date.now() - t0) / 1000,
          };
          this.save(epoch - 1, { [phase.name]: planStart });
        }
      }
    } finally {
      await step.release?.();
    }
    const seconds = (Date.now() - t0) / 1000;
    return {
      epoch,
      phase: phase.name,
      loss: sums.lossSum / sums.seen,
      lr: sums.lr,
      seconds,
      images: sums.seen,
      tracked: Object.fromEntries(tracked.map((n, i) => [n, sums.sums[i]! / sums.seen])),
    };
  }

  /** One optimiser step. */
  private async step(
    phase: Phase,
    epoch: number,
    batch: Int32Array,
    feeds: Record<string, Tensor>,
    step: EpochStep,
    sums: EpochSums,
    tStep: number,
  ): Promise<void> {
    const n = batch.length;
    const r = await step.run(feeds, phase.params);
    const at = { step: this.globalStep + 1, epoch, phase: phase.name };
    this.stopOn(stepFault(r, phase.params), at);
    if (phase.clipNorm) clipGradNorm(r.grads, phase.clipNorm);
    const k = this.counters[phase.name]!;
    const lr = phase.lr(k);
    phase.optimizer.step(r.grads, lr);
    this.stopOn(updateFault(r.grads.keys(), phase.params), at);
    this.counters[phase.name] = k + 1;
    this.globalStep++;
    phase.afterUpdate?.(k + 1);
    this.compute.step(phase.updates, lr, feeds);
    sums.lossSum += r.loss * n;
    sums.seen += n;
    sums.lr = lr;
    (step.tracked ?? []).forEach((name, i) => {
      sums.sums[i]! += Number(r.extras[name]!.data[0]) * n;
    });
    const now = Date.now();
    const imagesPerSecond = (1000 * n) / Math.max(1, now - tStep);
    this.run.onStep?.({
      phase: phase.name,
      updates: phase.updates,
      epoch,
      step: k + 1,
      globalStep: this.globalStep,
      loss: r.loss,
      lr,
      batch,
      feeds,
      imagesPerSecond,
    });
    this.logLine({
      kind: 'step',
      phase: phase.name,
      epoch,
      step: k + 1,
      loss: r.loss,
      lr,
      imagesPerSecond,
    });
  }

  /** Stops training at a fault: the last checkpoint (never overwritten here) is kept. */
  private stopOn(f: Fault | null, at: At): void {
    if (!f) return;
    const kept =
      this.lastSaved !== null
        ? `the last checkpoint (step ${this.lastSaved}) is kept`
        : 'no checkpoint of this run was written';
    throw new NonFiniteError(
      `training stopped at step ${at.step} (epoch ${at.epoch}, phase ${at.phase}): ${f.message}; ${kept}. Lower the learning rate or clip the gradient norm.`,
      { what: f.what, tensor: f.tensor, ...at },
    );
  }

  private logLine(rec: Record<string, unknown>): void {
    this.run.log?.(rec);
    if (this.run.logFile) {
      appendFileSync(this.run.logFile, `${JSON.stringify(rec)}\n`);
      this.run.checkpoint?.hook?.(`log:${String(rec.kind)}`);
    }
  }

  /**
   * Writes a checkpoint of the current position.
   * @param lastEpoch - the last completed epoch
   * @param planStarts - stream-plan states at the start of the current epoch (inside it)
   */
  private save(lastEpoch: number, planStarts: Record<string, RngState | null> = {}): void {
    const c = this.run.checkpoint;
    const id = this.run.identity;
    if (!c) return;
    if (!id) throw new UsageError('a run that keeps checkpoints needs an identity');
    const plans: Record<string, RngState | null> = {};
    for (const p of this.run.phases) plans[p.name] = planStarts[p.name] ?? p.streams.state();
    const logFile = this.run.logFile;
    const loop: LoopState = {
      next: this.next,
      counters: { ...this.counters },
      globalStep: this.globalStep,
      compute: this.compute.state(),
      plans,
      inside: this.inside,
      logBytes: logFile && existsSync(logFile) ? statSync(logFile).size : undefined,
    };
    const seed = this.compute.state().dataOrderSeed;
    const stores = Object.entries(this.run.stores ?? {});
    const main = stores.find(([k]) => k === 'weights')?.[1];
    saveCheckpoint(
      c.path,
      main ?? new Map(),
      {
        preset: id.preset,
        presetOptions: id.presetOptions,
        config: id.config,
        hyper: id.hyper,
        epoch: lastEpoch,
        globalStep: this.globalStep,
        rng: { seed, base: new Rng(seed).state() },
        history: this.history,
        loop,
      },
      {
        tensors: Object.fromEntries(
          stores.filter(([k]) => k !== 'weights').map(([k, s]) => [k, s.toTensors()]),
        ),
        optimizers: Object.fromEntries(
          this.run.phases
            .filter((p) => this.counters[p.name]! > (p.firstStep ?? 0))
            .map((p) => [p.name, p.optimizer.snapshot()]),
        ),
        hook: c.hook,
      },
    );
    this.lastSaved = this.globalStep;
  }

  outcome(): TrainingOutcome<R> {
    return { history: this.history, compute: this.compute.record(), steps: { ...this.counters } };
  }
}

/** Refuses a resume whose hyper-parameters differ from the checkpoint's, naming them. */
function checkHyper(ck: LoadedCheckpoint, now: Record<string, unknown>, r: ResumeOptions): void {
  const was = ck.state.hyper ?? r.hyperOf?.(ck.state.config);
  if (!was) return;
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  const changed = keys
    .filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]))
    .map((key) => ({ key, was: was[key], now: now[key] }));
  if (changed.length && !r.override) {
    const list = changed.map((c) => `${c.key} ${show(c.was)} -> ${show(c.now)}`).join(', ');
    throw new ResumeMismatchError(
      `${ck.dir} was trained with other hyper-parameters: ${list}; resuming would not continue the same run (override to resume anyway)`,
      changed,
    );
  }
}

/** Cuts a run's log back to what it held when the checkpoint was written. */
function truncateLog(file: string, state: CheckpointState): void {
  if (!existsSync(file)) return;
  const bytes = (state.loop as LoopState | undefined)?.logBytes;
  if (bytes !== undefined) {
    if (statSync(file).size > bytes) truncateSync(file, bytes);
    return;
  }
  // A first-layout checkpoint: keep the lines up to its step and epoch.
  const step = state.globalStep ?? Infinity;
  const keep = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        const r = JSON.parse(line) as { kind?: string; step?: number; epoch?: number };
        if (r.kind === 'step') return (r.step ?? 0) <= step;
        if (r.kind === 'epoch') return (r.epoch ?? 0) <= state.epoch;
        return true;
      } catch {
        return false; // a line cut by the kill
      }
    });
  writeFileAtomic(file, keep.length ? `${keep.join('\n')}\n` : '');
}

/** Index of the first NaN or ±Inf in an array, or −1. */
function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

type At = { step: number; epoch: number; phase: string };

/** What went bad in a step: a loss or gradient that is not finite, naming the parameter. */
interface Fault {
  what: 'loss' | 'gradient' | 'parameter';
  tensor: string;
  message: string;
}

/** A non-finite loss or gradient, naming the first parameter that went bad. */
function stepFault(r: StepResult, params: TensorSource): Fault | null {
  let badGrad: string | undefined;
  for (const [name, g] of r.grads) {
    if (firstNonFinite(g) >= 0) {
      badGrad = name;
      break;
    }
  }
  if (Number.isFinite(r.loss) && badGrad === undefined) return null;
  const loss = Number.isFinite(r.loss) ? '' : `the loss is ${r.loss}; `;
  if (badGrad !== undefined) {
    return {
      what: loss ? 'loss' : 'gradient',
      tensor: badGrad,
      message: `${loss}the gradient norm is not finite (first non-finite gradient: '${badGrad}')`,
    };
  }
  const { name, detail } = worstParameter(r.grads.keys(), params);
  return { what: 'loss', tensor: name, message: `${loss}${detail}` };
}

/** The first parameter with a non-finite value, else the one of largest magnitude. */
function worstParameter(
  names: Iterable<string>,
  params: TensorSource,
): { name: string; detail: string } {
  let best = '';
  let max = -1;
  for (const n of names) {
    const d = params.get(n).data;
    const i = firstNonFinite(d);
    if (i >= 0) return { name: n, detail: `first non-finite parameter: '${n}' (${d[i]})` };
    for (let k = 0; k < d.length; k++) {
      const v = Math.abs(d[k]!);
      if (v > max) [max, best] = [v, n];
    }
  }
  return { name: best, detail: `largest parameter: '${best}' (|w| up to ${max.toExponential(2)})` };
}

/** A parameter an update left non-finite. */
function updateFault(names: Iterable<string>, params: TensorSource): Fault | null {
  for (const n of names) {
    const d = params.get(n).data;
    const i = firstNonFinite(d);
    if (i >= 0)
      return {
        what: 'parameter',
        tensor: n,
        message: `the update made '${n}' non-finite (${d[i]} at index ${i})`,
      };
  }
  return null;
}
