import { ModelError, UsageError } from '../util/errors.js';
import type { ParamStore } from '../models/params.js';
import type { ParamGroup } from './params.js';

// The groups live in params.ts (with the parameters); re-exported for existing imports.
export { defaultDecayGroups, isNoDecay, type ParamGroup } from './params.js';

/** What every optimiser offers. */
export interface Optimizer {
  /**
   * Updates the parameters in place from their gradients. Frozen groups and parameters
   * without a gradient in `grads` are skipped; gradients of parameters outside every group
   * are ignored.
   */
  step(grads: Map<string, Float32Array>, lr: number): void;
  /** Freezes or unfreezes a group by name (takes effect at the next step). */
  setFrozen(group: string, frozen: boolean): void;
  /** Whether a group is frozen. */
  isFrozen(group: string): boolean;
  /** Serializable state (moments, step counts) for bit-identical resume. */
  state(): OptimizerState;
  loadState(s: OptimizerState): void;
  /** The state with its buffers as float32 copies (for binary checkpoints). */
  snapshot(): OptimizerSnapshot;
  /** Restores a state taken by {@link Optimizer.snapshot} (buffers are copied). */
  restore(s: OptimizerSnapshot): void;
}

/** Optimiser state with float32 buffers: what a checkpoint stores in safetensors. */
export interface OptimizerSnapshot {
  kind: string;
  /** Number of `step()` calls so far. */
  step: number;
  /** Updates applied to each parameter so far (see {@link OptimizerState.steps}). */
  steps: Record<string, number>;
  /** Per-parameter buffers: SGD `[momentum]`, AdamW `[exp_avg, exp_avg_sq]`. */
  buffers: Map<string, Float32Array[]>;
}

/** JSON-able optimiser state. Float32 moments survive a JSON round trip exactly. */
export interface OptimizerState {
  kind: string;
  /** Number of `step()` calls so far. */
  step: number;
  /**
   * Updates applied to each parameter so far (PyTorch's per-parameter `state['step']`:
   * a parameter without a gradient or in a frozen group does not count the step). States
   * written without it use `step` for every parameter that has buffers.
   */
  steps?: Record<string, number>;
  /** Per-parameter buffers: SGD `[momentum]`, AdamW `[exp_avg, exp_avg_sq]`. */
  buffers: Record<string, number[][]>;
}

abstract class BaseOptimizer implements Optimizer {
  /** `step()` calls. */
  protected calls = 0;
  /** Updates per parameter (only parameters that were updated at least once). */
  protected readonly counts = new Map<string, number>();
  protected readonly buffers = new Map<string, Float32Array[]>();
  protected readonly groups: ParamGroup[];

  constructor(
    protected readonly store: ParamStore,
    groups: ParamGroup[],
    private readonly kind: string,
    /** Buffers each updated parameter keeps. */
    private readonly nBuffers: number,
  ) {
    // Copied so that setFrozen() does not edit the caller's objects.
    this.groups = groups.map((g) => ({ ...g, params: [...g.params] }));
    const seen = new Set<string>();
    const groupNames = new Set<string>();
    for (const g of this.groups) {
      if (groupNames.has(g.name)) throw new UsageError(`two optimiser groups named '${g.name}'`);
      groupNames.add(g.name);
      for (const [key, v] of [
        ['lr', g.lr],
        ['weightDecay', g.weightDecay],
      ] as const) {
        if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
          throw new UsageError(`group '${g.name}': ${key} must be a finite number >= 0, got ${v}`);
        }
      }
      for (const p of g.params) {
        if (seen.has(p)) throw new UsageError(`parameter '${p}' is in two optimiser groups`);
        seen.add(p);
        store.get(p); // fails naming the parameter (and close names) if it is missing
      }
    }
  }

  private group(name: string): ParamGroup {
    const g = this.groups.find((x) => x.name === name);
    if (!g)
      throw new UsageError(
        `no parameter group '${name}' (groups: ${this.groups.map((x) => x.name).join(', ')})`,
      );
    return g;
  }

  setFrozen(group: string, frozen: boolean): void {
    this.group(group).frozen = frozen;
  }

  isFrozen(group: string): boolean {
    return this.group(group).frozen === true;
  }

  step(grads: Map<string, Float32Array>, lr: number): void {
    if (!(Number.isFinite(lr) && lr >= 0))
      throw new UsageError(`learning rate must be a finite number >= 0, got ${lr}`);
    // Every length is checked before anything changes, so a bad gradient leaves the
    // parameters and the state as they were.
    const work: { name: string; w: Float32Array; g: Float32Array; lr: number; wd: number }[] = [];
    for (const grp of this.groups) {
      if (grp.frozen) continue;
      for (const name of grp.params) {
        const g = grads.get(name);
        if (!g) continue;
        const w = this.store.get(name).data;
        if (g.length !== w.length) {
          throw new ModelError(
            `gradient of '${name}' has ${g.length} values, the parameter has ${w.length}`,
          );
        }
        work.push({ name, w, g, lr: lr * (grp.lr ?? 1), wd: grp.weightDecay ?? 0 });
      }
    }
    this.calls++;
    for (const x of work) {
      const t = (this.counts.get(x.name) ?? 0) + 1;
      this.counts.set(x.name, t);
      this.update(x.name, x.w, x.g, x.lr, x.wd, t);
    }
  }

  /** The parameter's buffers, created at zero on first use; `created` tells which. */
  protected bufs(name: string, n: number): { b: Float32Array[]; created: boolean } {
    const b = this.buffers.get(name);
    if (b) return { b, created: false };
    const fresh = Array.from({ length: this.nBuffers }, () => new Float32Array(n));
    this.buffers.set(name, fresh);
    return { b: fresh, created: true };
  }

  /** One parameter's update; `t` counts this parameter's updates, this one included. */
  protected abstract update(
    name: string,
    w: Float32Array,
    g: Float32Array,
    lr: number,
    wd: number,
    t: number,
  ): void;

  state(): OptimizerState {
    const buffers: Record<string, number[][]> = {};
    for (const [k, v] of this.buffers) buffers[k] = v.map((a) => Array.from(a));
    return {
      kind: this.kind,
      step: this.calls,
      steps: Object.fromEntries(this.counts),
      buffers,
    };
  }

  snapshot(): OptimizerSnapshot {
    return {
      kind: this.kind,
      step: this.calls,
      steps: Object.fromEntries(this.counts),
      buffers: new Map([...this.buffers].map(([k, v]) => [k, v.map((a) => Float32Array.from(a))])),
    };
  }

  loadState(s: OptimizerState): void {
    const buffers = new Map<string, Float32Array[]>();
    for (const [k, v] of Object.entries(s?.buffers ?? {})) {
      if (!Array.isArray(v)) throw this.badBuffers(k);
      buffers.set(
        k,
        v.map((a) => (Array.isArray(a) ? Float32Array.from(a) : new Float32Array(0))),
      );
    }
    // States without per-parameter counts: every parameter with buffers took every step.
    const steps = s?.steps ?? Object.fromEntries([...buffers.keys()].map((k) => [k, s?.step]));
    this.apply({ kind: s?.kind, step: s?.step, steps, buffers });
  }

  restore(s: OptimizerSnapshot): void {
    const buffers = new Map(
      [...s.buffers].map(([k, v]) => [k, v.map((a) => Float32Array.from(a))]),
    );
    this.apply({ ...s, buffers });
  }

  private badBuffers(k: string): ModelError {
    const n = this.store.has(k) ? this.store.get(k).data.length : 0;
    return new ModelError(
      `optimiser state: buffers of '${k}' do not match the parameter (${this.nBuffers} of ${n} values expected)`,
    );
  }

  /** Checks a state against the parameters, then takes it (nothing changes on failure). */
  private apply(s: OptimizerSnapshot): void {
    if (s?.kind !== this.kind)
      throw new UsageError(`optimiser state is for ${s?.kind}, not ${this.kind}`);
    if (!Number.isInteger(s.step) || s.step < 0)
      throw new UsageError(`optimiser state: step must be an integer >= 0, got ${s.step}`);
    const known = (k: string) => {
      if (!this.store.has(k))
        throw new ModelError(`optimiser state names parameter '${k}', which the model lacks`);
    };
    for (const [k, v] of s.buffers) {
      known(k);
      const n = this.store.get(k).data.length;
      if (v.length !== this.nBuffers || v.some((a) => a.length !== n)) throw this.badBuffers(k);
    }
    const counts = new Map<string, number>();
    for (const [k, t] of Object.entries(s.steps)) {
      known(k);
      if (!Number.isInteger(t) || t < 1)
        throw new UsageError(`optimiser state: step count of '${k}' must be >= 1, got ${t}`);
      counts.set(k, t);
    }
    this.calls = s.step;
    this.buffers.clear();
    for (const [k, v] of s.buffers) this.buffers.set(k, v);
    this.counts.clear();
    for (const [k, t] of counts) this.counts.set(k, t);
  }
}

/** Options of {@link SGD}. */
export interface SgdOptions {
  /** Momentum factor μ (default 0: plain SGD, no buffer kept). */
  momentum?: number;
  /** Nesterov momentum (needs μ > 0). */
  nesterov?: boolean;
}

/**
 * SGD with momentum (dampening 0) and optional Nesterov momentum, weight decay added to
 * the gradient (coupled) — PyTorch's `torch.optim.SGD` algorithm, per element:
 * ```
 * d ← g + wd·w
 * b ← d at a parameter's first update, else μ·b + d
 * w ← w − lr·(nesterov ? d + μ·b : b)      (with μ = 0: w ← w − lr·d)
 * ```
 * Each update is computed in float64 from the float32 values and rounded once when
 * stored, so results may differ from PyTorch's float32 kernels in the last bit.
 * @example
 * const opt = new SGD(store, defaultDecayGroups(store.names(), 1e-4), { momentum: 0.9, nesterov: true });
 * opt.step(grads, 0.01);
 */
export class SGD extends BaseOptimizer {
  private readonly mu: number;
  private readonly nesterov: boolean;

  /**
   * @param store - the parameters, updated in place
   * @param groups - parameter groups (learning-rate multiplier, weight decay, frozen)
   * @param opts - momentum and Nesterov
   */
  constructor(store: ParamStore, groups: ParamGroup[], opts: SgdOptions = {}) {
    const mu = opts.momentum ?? 0;
    super(store, groups, 'sgd', mu === 0 ? 0 : 1);
    if (!(Number.isFinite(mu) && mu >= 0))
      throw new UsageError(`SGD momentum must be a finite number >= 0, got ${mu}`);
    if (opts.nesterov && mu === 0) throw new UsageError('Nesterov momentum needs momentum > 0');
    this.mu = mu;
    this.nesterov = opts.nesterov ?? false;
  }

  protected update(name: string, w: Float32Array, g: Float32Array, lr: number, wd: number): void {
    const mu = this.mu;
    if (mu === 0) {
      for (let i = 0; i < w.length; i++) w[i] = w[i]! - lr * (g[i]! + wd * w[i]!);
      return;
    }
    const { b, created } = this.bufs(name, w.length);
    const buf = b[0]!;
    for (let i = 0; i < w.length; i++) {
      const d = g[i]! + wd * w[i]!;
      buf[i] = created ? d : mu * buf[i]! + d;
      // The buffer is stored in float32 (as PyTorch's), so the Nesterov term reads it back.
      w[i] = w[i]! - lr * (this.nesterov ? d + mu * buf[i]! : buf[i]!);
    }
  }
}

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** (β1, β2), default (0.9, 0.999). */
  betas?: [number, number];
  /** Added to the denominator, default 1e-8. */
  eps?: number;
}

/**
 * AdamW — Adam with decoupled weight decay and bias correction, PyTorch's
 * `torch.optim.AdamW` algorithm (amsgrad off), per element with t the parameter's update
 * count:
 * ```
 * w ← w·(1 − lr·wd)
 * m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 * w ← w − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 * ```
 * The weight decay comes from the groups (default 0, unlike PyTorch's 0.01); `lr` is the
 * step's rate times the group's multiplier. Arithmetic as in {@link SGD}.
 * @example
 * const opt = new AdamW(store, defaultDecayGroups(store.names(), 0.05));
 * opt.step(grads, 1e-3);
 */
export class AdamW extends BaseOptimizer {
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;

  /**
   * @param store - the parameters, updated in place
   * @param groups - parameter groups (learning-rate multiplier, weight decay, frozen)
   * @param opts - betas and eps
   */
  constructor(store: ParamStore, groups: ParamGroup[], opts: AdamWOptions = {}) {
    super(store, groups, 'adamw', 2);
    [this.b1, this.b2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    for (const [key, v] of [
      ['beta1', this.b1],
      ['beta2', this.b2],
    ] as const) {
      if (!(v >= 0 && v < 1)) throw new UsageError(`AdamW ${key} must be in [0, 1), got ${v}`);
    }
    if (!(Number.isFinite(this.eps) && this.eps >= 0))
      throw new UsageError(`AdamW eps must be a finite number >= 0, got ${this.eps}`);
  }

  protected update(
    name: string,
    w: Float32Array,
    g: Float32Array,
    lr: number,
    wd: number,
    t: number,
  ): void {
    const { b } = this.bufs(name, w.length);
    const m = b[0]!;
    const v = b[1]!;
    const b1 = this.b1;
    const b2 = this.b2;
    const stepSize = lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const decay = 1 - lr * wd;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      // The moments are read back from float32 storage, as PyTorch keeps them.
      w[i] = w[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + this.eps);
    }
  }
}

/**
 * Scales gradients in place so that their global L2 norm (over every array of `grads`)
 * is at most `maxNorm`, as PyTorch's `clip_grad_norm_`: the factor is
 * `min(1, maxNorm / (norm + 1e-6))`, so a clipped norm ends slightly below `maxNorm`.
 * The norm is summed in float64; a NaN or infinite norm scales every gradient by NaN or 0
 * as PyTorch does, so check the returned value.
 * @param grads - gradients by parameter name, scaled in place
 * @param maxNorm - largest allowed norm (> 0)
 * @returns the norm before clipping
 * @example
 * const norm = clipGradNorm(grads, 1.0);
 */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0))
    throw new UsageError(`gradient clipping norm must be a finite number > 0, got ${maxNorm}`);
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  // PyTorch holds the factor in a float32 tensor; a float32 × float32 product is exact in
  // float64, so rounding it once gives the same result as its float32 multiply.
  const f = Math.fround(maxNorm / (norm + 1e-6));
  if (Number.isNaN(f) || f < 1)
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = g[i]! * f;
  return norm;
}
