import { ModelError, UsageError } from '../errors.js';
import type { ParamStore } from './params.js';

/** Parameters that share settings and can be frozen together. */
export interface ParamGroup {
  name: string;
  params: string[];
  /** Multiplies the step's learning rate (default 1). */
  lrScale?: number;
  /** Weight decay of this group (default 0). */
  weightDecay?: number;
  /** A frozen group is skipped by step() until unfrozen. */
  frozen?: boolean;
}

/**
 * Splits names into a decayed group and a no-decay group: biases, normalisation
 * parameters (names containing `norm`, `bn`, `bottleneck`, `downsample.1`), position
 * embeddings, class tokens and denoiser time embeddings get no weight decay (timm's rule:
 * nothing 1-D decays), everything else does.
 */
export function defaultDecayGroups(
  names: string[],
  weightDecay: number,
  shapes?: Map<string, number[]>,
): ParamGroup[] {
  const noDecay = (n: string) =>
    n.endsWith('.bias') ||
    /(^|\.)(norm\d*|bn\d*|bottleneck)(\.|$)/.test(n) ||
    /downsample\.1\./.test(n) ||
    n === 'pos_embed' ||
    n === 'cls_token' ||
    n.endsWith('.denoise.embed') ||
    (shapes?.get(n)?.length ?? 2) <= 1;
  return [
    { name: 'decay', params: names.filter((n) => !noDecay(n)), weightDecay },
    { name: 'no_decay', params: names.filter(noDecay), weightDecay: 0 },
  ];
}

/** What every optimiser offers. */
export interface Optimizer {
  /** Updates the parameters in place from their gradients. */
  step(grads: Map<string, Float32Array>, lr: number): void;
  setFrozen(group: string, frozen: boolean): void;
  /** Serializable state (moments, step counts) for bit-identical resume. */
  state(): OptimizerState;
  loadState(s: OptimizerState): void;
}

export interface OptimizerState {
  kind: string;
  step: number;
  buffers: Record<string, number[][]>;
}

abstract class BaseOptimizer implements Optimizer {
  protected t = 0;
  protected readonly buffers = new Map<string, Float32Array[]>();
  constructor(
    protected readonly store: ParamStore,
    protected readonly groups: ParamGroup[],
    private readonly kind: string,
    private readonly nBuffers: number,
  ) {
    const seen = new Set<string>();
    for (const g of groups) {
      for (const p of g.params) {
        if (seen.has(p)) throw new UsageError(`parameter '${p}' is in two optimiser groups`);
        seen.add(p);
        store.get(p);
      }
    }
  }

  setFrozen(group: string, frozen: boolean): void {
    const g = this.groups.find((x) => x.name === group);
    if (!g)
      throw new UsageError(
        `no parameter group '${group}' (groups: ${this.groups.map((x) => x.name).join(', ')})`,
      );
    g.frozen = frozen;
  }

  protected bufs(name: string, n: number): Float32Array[] {
    let b = this.buffers.get(name);
    if (!b)
      this.buffers.set(
        name,
        (b = Array.from({ length: this.nBuffers }, () => new Float32Array(n))),
      );
    return b;
  }

  step(grads: Map<string, Float32Array>, lr: number): void {
    this.t++;
    for (const g of this.groups) {
      if (g.frozen) continue;
      const glr = lr * (g.lrScale ?? 1);
      const wd = g.weightDecay ?? 0;
      for (const name of g.params) {
        const grad = grads.get(name);
        if (!grad) continue;
        const p = this.store.get(name);
        if (grad.length !== p.data.length) {
          throw new ModelError(
            `gradient of '${name}' has ${grad.length} values, the parameter has ${p.data.length}`,
          );
        }
        this.update(name, p.data, grad, glr, wd);
      }
    }
  }

  protected abstract update(
    name: string,
    w: Float32Array,
    g: Float32Array,
    lr: number,
    wd: number,
  ): void;

  state(): OptimizerState {
    const buffers: Record<string, number[][]> = {};
    for (const [k, v] of this.buffers) buffers[k] = v.map((a) => Array.from(a));
    return { kind: this.kind, step: this.t, buffers };
  }

  loadState(s: OptimizerState): void {
    if (s.kind !== this.kind)
      throw new UsageError(`optimiser state is for ${s.kind}, not ${this.kind}`);
    this.t = s.step;
    this.buffers.clear();
    for (const [k, v] of Object.entries(s.buffers))
      this.buffers.set(
        k,
        v.map((a) => Float32Array.from(a)),
      );
  }
}

/**
 * SGD with momentum, dampening 0 and optional Nesterov, weight decay added to the
 * gradient (PyTorch's torch.optim.SGD semantics):
 * g ← g + wd·w; b ← μ b + g (b = g at the first step); w ← w − lr·(nesterov ? g + μ b : b).
 */
export class SGD extends BaseOptimizer {
  constructor(
    store: ParamStore,
    groups: ParamGroup[],
    private readonly opts: { momentum?: number; nesterov?: boolean } = {},
  ) {
    super(store, groups, 'sgd', 1);
    if (opts.nesterov && !(opts.momentum && opts.momentum > 0))
      throw new UsageError('Nesterov momentum needs momentum > 0');
  }

  protected update(name: string, w: Float32Array, g: Float32Array, lr: number, wd: number): void {
    const mu = this.opts.momentum ?? 0;
    const first = !this.buffers.has(name);
    const [buf] = this.bufs(name, w.length) as [Float32Array];
    for (let i = 0; i < w.length; i++) {
      let d = g[i]! + wd * w[i]!;
      if (mu !== 0) {
        const b = first ? d : mu * buf[i]! + d;
        buf[i] = b;
        d = this.opts.nesterov ? d + mu * b : b;
      }
      w[i] = w[i]! - lr * d;
    }
  }
}

/**
 * AdamW (decoupled weight decay, PyTorch semantics): w ← w (1 − lr·wd); m ← β1 m + (1−β1) g;
 * v ← β2 v + (1−β2) g²; w ← w − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε).
 */
export class AdamW extends BaseOptimizer {
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  constructor(
    store: ParamStore,
    groups: ParamGroup[],
    opts: { betas?: [number, number]; eps?: number } = {},
  ) {
    super(store, groups, 'adamw', 2);
    [this.b1, this.b2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
  }

  protected update(name: string, w: Float32Array, g: Float32Array, lr: number, wd: number): void {
    const [m, v] = this.bufs(name, w.length) as [Float32Array, Float32Array];
    const bc1 = 1 - this.b1 ** this.t;
    const bc2 = 1 - this.b2 ** this.t;
    const stepSize = lr / bc1;
    const sq2 = Math.sqrt(bc2);
    const decay = 1 - lr * wd;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      const mi = this.b1 * m[i]! + (1 - this.b1) * gi;
      const vi = this.b2 * v[i]! + (1 - this.b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] = w[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sq2 + this.eps);
    }
  }
}

/**
 * Scales gradients in place so that their global L2 norm is at most `maxNorm`
 * (PyTorch's clip_grad_norm_: factor maxNorm / (norm + 1e-6) when below 1).
 * @returns the norm before clipping
 */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  const f = maxNorm / (norm + 1e-6);
  if (f < 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = g[i]! * f;
  return norm;
}
