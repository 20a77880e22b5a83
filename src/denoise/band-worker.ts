/**
 * The worker thread of {@link DenseKernels}: eigenvalues of the band matrices that the
 * Householder stage leaves (bulge chasing and QL, pure JavaScript), so that one layer's
 * chasing runs on the second core while the main thread runs the next layer's products.
 * Messages in: { id, n, w, b, data }; out: { id, values } or { id, error }.
 */
import { parentPort } from 'node:worker_threads';
import { Band, bandEigenvalues } from './linalg.js';

/** A band to reduce, as the kernels post it. */
export interface BandJob {
  id: number;
  n: number;
  w: number;
  b: number;
  data: Float64Array;
}

parentPort?.on('message', (job: BandJob) => {
  try {
    const values = bandEigenvalues(new Band(job.n, job.w, job.data), job.b);
    parentPort!.postMessage({ id: job.id, values }, [values.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).message ?? String(err) });
  }
});
