import type { GraphBuilder, Value } from '../onnx/builder.js';

/**
 * What layer builders share while one model graph is built: the builder, whether the
 * graph is for training (batch statistics, dropout) or evaluation, and what a training
 * graph must hand back to the trainer.
 */
export interface LayerContext {
  readonly b: GraphBuilder;
  readonly mode: 'train' | 'eval';
  /** Training mode: new values of running statistics, by buffer name. */
  readonly bufferUpdates: Map<string, Value>;
  /** Training mode: dropout-mask inputs the trainer must feed (name -> keep probability). */
  readonly dropoutMasks: Map<string, { keep: number; value: Value }>;
}

/** A fresh context for one graph. */
export function layerContext(b: GraphBuilder, mode: 'train' | 'eval'): LayerContext {
  return { b, mode, bufferUpdates: new Map(), dropoutMasks: new Map() };
}
