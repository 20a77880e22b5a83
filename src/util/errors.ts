/**
 * Typed errors. Every failure a user can cause (a bad file, a bad flag, a model the tool
 * cannot handle) is one of these, with a message that names the file, op, layer, input
 * or flag at fault. The CLI maps them to exit codes: 1 for bad usage, 2 for bad data or
 * model, and 3 for anything else (an internal error: a bug, not the user's input).
 */
export type ErrorKind =
  /** A model file or graph is malformed or unsupported. */
  | 'model'
  /** A data set, image or tensor file is malformed. */
  | 'data'
  /** A flag, option or argument is invalid. */
  | 'usage'
  /** No gradient rule for an op. */
  | 'gradient'
  /** A runtime feed does not match the graph. */
  | 'feed';

export class DenoiseRepError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'DenoiseRepError';
  }
}

/** A malformed or unsupported model (graph, op, attribute, file). */
export class ModelError extends DenoiseRepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('model', message, options);
    this.name = 'ModelError';
  }
}

/** Malformed input data (data set folder, image, tensor file, label). */
export class DataError extends DenoiseRepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('data', message, options);
    this.name = 'DataError';
  }
}

/**
 * A non-finite value (NaN or ±Inf) where training or a file needs finite numbers: a loss,
 * a gradient, a parameter after an update, or a tensor about to be written. `tensor`
 * names the parameter or tensor that went bad; `step` is the optimiser step (1-based, the
 * step that produced the value) when it came from training.
 */
export class NonFiniteError extends DataError {
  constructor(
    message: string,
    readonly detail: {
      what: 'loss' | 'gradient' | 'parameter' | 'tensor';
      tensor?: string;
      step?: number;
      epoch?: number;
      phase?: string;
    },
  ) {
    super(message);
    this.name = 'NonFiniteError';
  }
}

/** An invalid option, flag or argument. */
export class UsageError extends DenoiseRepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}

/**
 * A resume refused because hyper-parameters differ from the checkpoint's; `changed` names
 * each one with its recorded and its new value.
 */
export class ResumeMismatchError extends UsageError {
  constructor(
    message: string,
    readonly changed: { key: string; was: unknown; now: unknown }[],
  ) {
    super(message);
    this.name = 'ResumeMismatchError';
  }
}

/** An op reached by differentiation that has no gradient rule. */
export class GradientError extends DenoiseRepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('gradient', message, options);
    this.name = 'GradientError';
  }
}

/** A session feed with a wrong name, dtype or shape. */
export class FeedError extends DenoiseRepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('feed', message, options);
    this.name = 'FeedError';
  }
}

/**
 * Fusion would write a tensor that another layer also reads as its weight (tied weights)
 * without being allowed to untie them: writing it would change the other layer too.
 */
export class SharedTensorError extends ModelError {
  /** The layer being fused. */
  readonly layer: string;
  /** The shared tensor (initializer) and the other layers that read it. */
  readonly tensor: string;
  readonly readers: string[];
  constructor(layer: string, tensor: string, readers: string[], message: string) {
    super(message);
    this.name = 'SharedTensorError';
    this.layer = layer;
    this.tensor = tensor;
    this.readers = readers;
  }
}

/** Exit code for the CLI: 1 for bad usage, 2 for bad data or model, 3 for internal errors. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof DenoiseRepError) return err.kind === 'usage' ? 1 : 2;
  return 3;
}
