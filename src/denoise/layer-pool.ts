/**
 * Closed-form layer fits in parallel on worker threads. One layer's fit alternates
 * ONNX Runtime products with single-threaded JavaScript (panel factorisations, bulge
 * chasing, O(n²) passes), and ONNX Runtime runs on the calling thread, so on one thread
 * the cores idle during the JavaScript. Each worker here fits whole layers with its own
 * kernels and `threads` intra-op threads, so the layers' JavaScript and products overlap.
 * Measured on 2 cores (two workers of one thread against one of two): 1.35x the layers per
 * second at 3,072 wide, 1.2x at 768; a whole ViT-B/16 closed form 64 s to 40-50 s
 * (README, "Real size"). Each worker's buffers come from its own glibc arena: see
 * {@link fitClosedForm} for the setting that keeps them from adding to the peak memory.
 */
import type { Worker } from 'node:worker_threads';
import { DataError, ModelError, UsageError } from '../util/errors.js';
import { startModuleWorker } from '../util/worker.js';
import {
  type FusionFactor,
  fitLayerCompiled,
  type LayerFit,
  type MomentAccumulator,
  type NoiseScales,
} from './closed-form.js';
import type { DenseKernels } from './linalg-compiled.js';
import type { LayerJob, LayerReply } from './layer-worker.js';

/** Options of a {@link LayerPool}. */
export interface LayerPoolOptions {
  /** Worker threads, each fitting one layer at a time (at least 1). */
  workers: number;
  /** ONNX Runtime intra-op threads of each worker (at least 1). */
  threads: number;
  /**
   * Kernels on the calling thread, used when a worker cannot start or dies: the layers it
   * held and every later one are then fitted here.
   */
  fallback: DenseKernels;
}

interface Pending {
  job: LayerJob;
  stats: MomentAccumulator;
  coeffs: NoiseScales;
  resolve: (fit: LayerFit) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
}

/** A worker's error, rebuilt as the class it was thrown as where that is one of ours. */
function rebuildError(e: { name: string; message: string }): Error {
  switch (e.name) {
    case 'DataError':
    case 'NonFiniteError':
      return new DataError(e.message);
    case 'UsageError':
    case 'ResumeMismatchError':
      return new UsageError(e.message);
    case 'ModelError':
    case 'SharedTensorError':
      return new ModelError(e.message);
    default: {
      const err = new Error(e.message);
      err.name = e.name;
      return err;
    }
  }
}

/**
 * A pool of worker threads that fit closed-form denoisers ({@link fitLayerCompiled}),
 * one layer per worker at a time, in the order they were asked for.
 * @example
 * const pool = new LayerPool({ workers: 2, threads: 1, fallback: kernels });
 * const fits = await Promise.all(layers.map((s) => pool.fit(s, coeffs, { name: 'fc2' })));
 * fits[0].fit.Wd;
 * await pool.release();
 */
export class LayerPool {
  readonly workers: number;
  readonly threads: number;
  private readonly fallback: DenseKernels;
  private slots: Slot[] | null = null;
  private broken = false;
  private nextId = 0;
  private readonly queue: Pending[] = [];

  /** @param opts - workers, threads per worker, fallback kernels */
  constructor(opts: LayerPoolOptions) {
    if (!Number.isInteger(opts.workers) || opts.workers < 1)
      throw new UsageError(`LayerPool: workers must be an integer >= 1, got ${opts.workers}`);
    if (!Number.isInteger(opts.threads) || opts.threads < 1)
      throw new UsageError(`LayerPool: threads must be an integer >= 1, got ${opts.threads}`);
    this.workers = opts.workers;
    this.threads = opts.threads;
    this.fallback = opts.fallback;
  }

  /**
   * The closed-form denoiser of one layer, fitted on a worker (the statistics and the
   * weight are copied to it; `stats` is left as it was), with its fusion product when
   * `weight` is given ({@link fitLayerCompiled}).
   * @param stats - moments of the layer's clean inputs
   * @param coeffs - s1, s2
   * @param opts - `ridge`, `name` for messages, `weight` ({@link FusionFactor})
   */
  fit(
    stats: MomentAccumulator,
    coeffs: NoiseScales,
    opts: { ridge?: number; name?: string; weight?: FusionFactor } = {},
  ): Promise<LayerFit> {
    const job: LayerJob = {
      id: this.nextId++,
      count: stats.count,
      sum: stats.sum,
      gram: stats.gram,
      s1: coeffs.s1,
      s2: coeffs.s2,
      ridge: opts.ridge,
      name: opts.name,
      weight: opts.weight,
    };
    return new Promise((resolve, reject) => {
      this.queue.push({ job, stats, coeffs, resolve, reject });
      this.pump();
    });
  }

  /** Stops the workers (each releases its kernels first). */
  async release(): Promise<void> {
    const slots = this.slots ?? [];
    this.slots = null;
    await Promise.all(
      slots.map(
        ({ worker }) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => void worker.terminate(), 10_000);
            worker.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            worker.postMessage('stop');
          }),
      ),
    );
  }

  /** Runs a job here, on the fallback kernels. */
  private inline(p: Pending): void {
    fitLayerCompiled(p.stats, p.coeffs, this.fallback, p.job).then(p.resolve, p.reject);
  }

  private pump(): void {
    const slots = this.broken ? null : this.start();
    if (!slots) {
      for (const p of this.queue.splice(0)) this.inline(p);
      return;
    }
    for (const slot of slots) {
      if (slot.busy || this.queue.length === 0) continue;
      const p = this.queue.shift()!;
      slot.busy = p;
      slot.worker.ref();
      slot.worker.postMessage(p.job);
    }
  }

  private start(): Slot[] | null {
    if (this.slots) return this.slots;
    const slots: Slot[] = [];
    try {
      for (let i = 0; i < this.workers; i++) {
        const worker = startModuleWorker(import.meta.url, './layer-worker', {
          workerData: { threads: this.threads },
        });
        slots.push({ worker, busy: null });
      }
    } catch {
      for (const s of slots) void s.worker.terminate();
      this.broken = true;
      return null;
    }
    for (const slot of slots) this.watch(slot);
    this.slots = slots;
    return slots;
  }

  private watch(slot: Slot): void {
    const { worker } = slot;
    worker.unref(); // held only while it fits a layer (see pump)
    worker.on('message', (reply: LayerReply) => {
      const p = slot.busy;
      if (!p || p.job.id !== reply.id) return;
      slot.busy = null;
      worker.unref();
      if ('result' in reply) p.resolve(reply.result);
      else p.reject(rebuildError(reply.error));
      this.pump();
    });
    // A worker that fails (it could not load, or died): the layers the workers held and
    // every later one run on the calling thread.
    const fail = () => {
      if (this.broken) return;
      this.broken = true;
      const slots = this.slots ?? [];
      this.slots = null;
      for (const s of slots) void s.worker.terminate();
      this.queue.unshift(...slots.flatMap((s) => (s.busy ? [s.busy] : [])));
      this.pump();
    };
    worker.on('error', fail);
    worker.on('exit', () => {
      if (this.slots?.includes(slot)) fail();
    });
  }
}
