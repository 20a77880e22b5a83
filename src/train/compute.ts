/**
 * The compute record of a training run: how many optimiser steps reached the backbone and
 * the denoisers, the learning rates, the data-order seed, and a trace (a hash of every
 * backbone step's learning rate and data feeds) that is equal for two runs exactly when
 * they made the same backbone steps on the same batches, in the same order, with the same
 * augmentation and dropout draws (up to hash collisions).
 */
import type { Tensor } from '../onnx/tensor.js';

/** What a phase's optimiser steps update. */
export type ParamRole = 'backbone' | 'denoisers';

/** The compute a run spent, recorded by the training loop. */
export interface ComputeRecord {
  /** Optimiser steps that updated backbone parameters. */
  backboneSteps: number;
  /** Optimiser steps that updated denoiser parameters. */
  denoiserSteps: number;
  /** Learning rate of the first and last backbone step (denoiser steps when none). */
  lrFirst: number | null;
  lrLast: number | null;
  /** Seed of the data-order streams (of the backbone phases when there are any). */
  dataOrderSeed: number;
  /**
   * Hash (hex) of every backbone step's learning rate and data feeds (batch, augmented
   * images, targets, dropout masks), in order; null when the run resumed from a checkpoint
   * that did not record it.
   */
  backboneTrace: string | null;
}

/** Running state of a {@link ComputeTracker} (JSON, for checkpoints). */
export interface ComputeState {
  steps: Record<ParamRole, number>;
  lr: Record<ParamRole, [number, number] | null>;
  dataOrderSeed: number;
  trace: [number, number] | null;
}

/** Two 32-bit lanes of a multiplicative hash, fed 32-bit words. */
function mix(h: [number, number], w: number): void {
  h[0] = Math.imul(h[0] ^ w, 0x5bd1e995);
  h[0] ^= h[0] >>> 15;
  h[1] = Math.imul(h[1] ^ w, 0x27d4eb2f);
  h[1] ^= h[1] >>> 13;
}

function mixString(h: [number, number], s: string): void {
  mix(h, s.length);
  for (let i = 0; i < s.length; i++) mix(h, s.charCodeAt(i));
}

const f64 = new Float64Array(1);
const f64Words = new Uint32Array(f64.buffer);

/** Mixes a tensor (dims and raw bytes) into a hash. */
function mixTensor(h: [number, number], t: Tensor): void {
  mix(h, t.dims.length);
  for (const d of t.dims) mix(h, d);
  const { buffer, byteOffset, byteLength } = t.data as unknown as ArrayBufferView;
  if (byteOffset % 4 === 0 && byteLength % 4 === 0) {
    const words = new Uint32Array(buffer, byteOffset, byteLength / 4);
    for (let i = 0; i < words.length; i++) mix(h, words[i]!);
  } else {
    const bytes = new Uint8Array(buffer, byteOffset, byteLength);
    for (let i = 0; i < bytes.length; i++) mix(h, bytes[i]!);
  }
}

/** Accumulates a run's {@link ComputeRecord}, step by step. */
export class ComputeTracker {
  private s: ComputeState;

  constructor(dataOrderSeed: number, state?: ComputeState) {
    this.s = state
      ? structuredClone(state)
      : {
          steps: { backbone: 0, denoisers: 0 },
          lr: { backbone: null, denoisers: null },
          dataOrderSeed,
          trace: [0x811c9dc5, 0x9e3779b9],
        };
  }

  /**
   * Records one optimiser step.
   * @param roles - what it updated
   * @param lr - its learning rate
   * @param feeds - its data feeds (hashed into the trace for backbone steps)
   */
  step(roles: readonly ParamRole[], lr: number, feeds: Record<string, Tensor>): void {
    for (const r of roles) {
      this.s.steps[r]++;
      const prev = this.s.lr[r];
      this.s.lr[r] = [prev ? prev[0] : lr, lr];
    }
    const h = this.s.trace;
    if (!roles.includes('backbone') || !h) return;
    f64[0] = lr;
    mix(h, f64Words[0]!);
    mix(h, f64Words[1]!);
    for (const name of Object.keys(feeds).sort()) {
      mixString(h, name);
      mixTensor(h, feeds[name]!);
    }
  }

  state(): ComputeState {
    return structuredClone(this.s);
  }

  record(): ComputeRecord {
    const role: ParamRole = this.s.steps.backbone > 0 ? 'backbone' : 'denoisers';
    const lr = this.s.lr[role];
    const h = this.s.trace;
    return {
      backboneSteps: this.s.steps.backbone,
      denoiserSteps: this.s.steps.denoisers,
      lrFirst: lr ? lr[0] : null,
      lrLast: lr ? lr[1] : null,
      dataOrderSeed: this.s.dataOrderSeed,
      backboneTrace: h
        ? (h[0] >>> 0).toString(16).padStart(8, '0') + (h[1] >>> 0).toString(16).padStart(8, '0')
        : null,
    };
  }
}
