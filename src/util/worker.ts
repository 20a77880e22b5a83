/**
 * Starting one of the library's own modules on a worker thread, whether the library runs
 * from its TypeScript sources (under tsx: the worker registers tsx before loading the
 * entry) or from the build (the compiled `.js` entry).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running the module `entry` (a path relative to `from`, without extension).
 * @param from - `import.meta.url` of the module that owns the entry
 * @param entry - e.g. './layer-worker'
 * @param opts - worker options (workerData, resourceLimits, ...)
 * @example const w = startModuleWorker(import.meta.url, './layer-worker');
 */
export function startModuleWorker(from: string, entry: string, opts: WorkerOptions = {}): Worker {
  if (from.endsWith('.ts')) {
    const tsx = import.meta.resolve('tsx/esm/api');
    const url = new URL(`${entry}.ts`, from).href;
    const boot =
      `import(${JSON.stringify(tsx)})` +
      `.then((m) => { m.register(); return import(${JSON.stringify(url)}); });`;
    return new Worker(boot, { ...opts, eval: true });
  }
  return new Worker(new URL(`${entry}.js`, from), opts);
}
