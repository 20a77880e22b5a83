import { ParamStore } from '../models/params.js';
import { UsageError } from '../util/errors.js';

/**
 * An exponential moving average of parameters (DDPM samples and evaluates with it, decay
 * 0.9999 over 800k steps). After each optimiser step k (1-based),
 * ema ← d_k · ema + (1 − d_k) · w with d_k = min(decay, (1 + k) / (10 + k)): the warm-up
 * of TensorFlow's ExponentialMovingAverage (`num_updates`), which lets a run of a few
 * thousand steps average over its recent steps instead of its initial weights.
 * Arithmetic in float64 per element, stored as float32.
 * @example
 * const ema = new Ema(store, built.params, 0.999);
 * // after each optimiser step:
 * ema.update(store);
 * exportOnnx(def, ema.store, 'model.onnx');
 */
export class Ema {
  /** The averaged values (same names and shapes as the tracked parameters). */
  readonly store: ParamStore;
  private count = 0;

  /**
   * @param params - the live parameters (copied as the starting average)
   * @param names - which to average (default all)
   * @param decay - the largest decay, in [0, 1)
   */
  constructor(
    params: ParamStore,
    names: readonly string[] = params.names(),
    readonly decay = 0.9999,
  ) {
    if (!(decay >= 0 && decay < 1))
      throw new UsageError(`EMA decay must be in [0, 1), got ${decay}`);
    this.store = new ParamStore();
    for (const n of names) {
      const p = params.get(n);
      this.store.set(n, [...p.shape], Float32Array.from(p.data));
    }
  }

  /** Updates taken so far. */
  get updates(): number {
    return this.count;
  }

  /** The decay of update k (1-based). */
  decayAt(k: number): number {
    return Math.min(this.decay, (1 + k) / (10 + k));
  }

  /**
   * Folds the current parameters into the average (call after each optimiser step).
   * @param params - the live parameters
   * @param step - the optimiser step just taken, 1-based (default: one more than the last);
   *   a training loop passes its own counter, so a resumed run continues the warm-up
   */
  update(params: ParamStore, step = this.count + 1): void {
    if (!Number.isInteger(step) || step < 1) {
      throw new UsageError(`EMA step must be an integer >= 1, got ${step}`);
    }
    this.count = step;
    const d = this.decayAt(step);
    for (const e of this.store.entries()) {
      const w = params.get(e.name).data;
      const a = e.data;
      for (let i = 0; i < a.length; i++) a[i] = d * a[i]! + (1 - d) * w[i]!;
    }
  }
}
