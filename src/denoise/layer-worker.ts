/**
 * The worker thread of {@link LayerPool}: fits one layer's closed-form denoiser at a time
 * ({@link fitLayerCompiled}, with its fusion product when given the weight) with kernels
 * of its own, so that layers fit in parallel, each on its own core. Messages in: {@link LayerJob} or `'stop'`; out: {@link LayerReply}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  type FusionFactor,
  fitLayerCompiled,
  type LayerFit,
  MomentAccumulator,
} from './closed-form.js';
import { DenseKernels } from './linalg-compiled.js';

/** One layer to fit: its moments and settings. */
export interface LayerJob {
  id: number;
  count: number;
  sum: Float64Array;
  gram: Float64Array;
  s1: number;
  s2: number;
  ridge?: number;
  name?: string;
  /** The layer's weight for its fusion product, if wanted. */
  weight?: FusionFactor;
}

/** The fit of a job, or the error it raised (its class name and message). */
export type LayerReply =
  { id: number; result: LayerFit } | { id: number; error: { name: string; message: string } };

const port = parentPort!;
const kernels = new DenseKernels({ threads: (workerData as { threads: number }).threads });

port.on('message', (job: LayerJob | 'stop') => {
  if (job === 'stop') {
    void kernels.release().finally(() => port.close());
    return;
  }
  const stats = new MomentAccumulator(job.sum.length, job);
  fitLayerCompiled(stats, job, kernels, job).then(
    (result) => {
      const reply: LayerReply = { id: job.id, result };
      // Hand the arrays over rather than copy them (Wd of a 3,072-wide layer is 75 MB);
      // a buffer that cannot be handed over (ONNX Runtime's own memory) is copied.
      const { fit, product } = result;
      const owned = [
        fit.Wd,
        fit.bd,
        fit.e,
        fit.covarianceEigenvalues,
        ...(product ? [product] : []),
      ]
        .filter((a) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength)
        .map((a) => a.buffer as ArrayBuffer);
      try {
        port.postMessage(reply, owned);
      } catch {
        port.postMessage(reply);
      }
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id: job.id, error: { name: e.name, message: e.message } });
    },
  );
});
