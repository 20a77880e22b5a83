/**
 * The seeded random streams a training run draws from, per epoch: data order,
 * augmentation, dropout masks and other per-sample draws (noise, timesteps).
 *
 * A run's streams are a {@link StreamPlan}: a seed and a rule that derives the streams of
 * each epoch from it. Two runs given plans built by the same function with the same seed
 * and labels see the same batches in the same order and the same augmentation and
 * dropout draws: this is how a control is compute-matched to its arm by construction.
 */
import { Rng } from '../util/rng.js';

/** The streams one epoch of a phase draws from (two names may share one generator). */
export interface EpochStreams {
  /** Data order: the epoch's batches are cut from it. */
  order: Rng;
  /** Augmentation draws. */
  augment: Rng;
  /** Dropout masks. */
  dropout: Rng;
  /** The objective's own draws (diffusion noise, timesteps). */
  noise: Rng;
}

/** Rng state as {@link Rng.state} returns it. */
export type RngState = ReturnType<Rng['state']>;

/** A seed and the rule that derives each epoch's streams from it. */
export interface StreamPlan {
  /** The seed every stream derives from (the compute record's `dataOrderSeed`). */
  readonly seed: number;
  /** A name for the rule (recorded with checkpoints, compared on resume). */
  readonly kind: string;
  /** The streams of epoch `e`; called once at the start of each epoch, in epoch order. */
  epoch(e: number): EpochStreams;
  /** State the plan carries from epoch to epoch (none for plans that fork from the seed). */
  state(): RngState | null;
  setState(s: RngState | null): void;
}

const NAMES = ['order', 'augment', 'dropout', 'noise'] as const;

/** The states of an epoch's streams, by stream name, for a checkpoint inside an epoch. */
export function streamStates(s: EpochStreams): Record<string, RngState> {
  return Object.fromEntries(NAMES.map((n) => [n, s[n].state()]));
}

/** Restores the states taken by {@link streamStates} (shared generators get one state twice). */
export function setStreamStates(s: EpochStreams, states: Record<string, RngState>): void {
  for (const n of NAMES) {
    const st = states[n];
    if (st) s[n].setState(st);
  }
}

/** A plan whose epochs fork from the seed alone (no state between epochs). */
function stateless(seed: number, kind: string, epoch: (e: number) => EpochStreams): StreamPlan {
  return { seed, kind, epoch, state: () => null, setState: () => undefined };
}

/**
 * Separate streams per epoch: `base = Rng(seed).fork(label(e))`, then each stream is
 * `base.fork(name)` (`order`, `augment`, `dropout`, `noise`), so drawing more in one
 * never shifts another. Supervised training uses it with labels `epoch-<e>`.
 * @param seed - the run's seed
 * @param label - the epoch's fork label
 * @example
 * const plan = separateStreams(0);
 * const { order, augment } = plan.epoch(3); // Rng(0).fork('epoch-3').fork('order'), ...
 */
export function separateStreams(
  seed: number,
  label: (e: number) => string = (e) => `epoch-${e}`,
): StreamPlan {
  return stateless(seed, `separate:${label(0)}`, (e) => {
    const base = new Rng(seed).fork(label(e));
    return {
      order: base.fork('order'),
      augment: base.fork('augment'),
      dropout: base.fork('dropout'),
      noise: base.fork('noise'),
    };
  });
}

/**
 * The data order forked, every other draw from one shared stream:
 * `base = Rng(seed).fork(label(e))`, `order = base.fork('order')`, and augmentation,
 * dropout and noise all draw from `base` in the order the feeds ask for them. The
 * label-augmented backbone phases use it with labels `backbone-epoch-<e>`.
 * @param seed - the run's seed
 * @param label - the epoch's fork label
 */
export function sharedDrawStreams(seed: number, label: (e: number) => string): StreamPlan {
  return stateless(seed, `shared:${label(0)}`, (e) => {
    const base = new Rng(seed).fork(label(e));
    return { order: base.fork('order'), augment: base, dropout: base, noise: base };
  });
}

/**
 * One stream per epoch, `Rng(seed).fork(label(e))`, that orders the data (and serves any
 * other draw). Label-free denoiser training uses it with labels `denoise-epoch-<e>`: its
 * noise is drawn inside the graph.
 * @param seed - the run's seed
 * @param label - the epoch's fork label
 */
export function orderStreams(seed: number, label: (e: number) => string): StreamPlan {
  return stateless(seed, `order:${label(0)}`, (e) => {
    const base = new Rng(seed).fork(label(e));
    return { order: base, augment: base, dropout: base, noise: base };
  });
}

/**
 * One generator for the whole run, `root = Rng(seed).fork(rootLabel)`: epoch e's order
 * is `root.fork('epoch-<e>')` (which depends on everything drawn before it) and every
 * other draw advances `root`. DenoiseRep~ training uses it with the root label `tilde`.
 * @param seed - the run's seed
 * @param rootLabel - the root's fork label
 */
export function persistentStreams(seed: number, rootLabel: string): StreamPlan {
  const root = new Rng(seed).fork(rootLabel);
  return {
    seed,
    kind: `persistent:${rootLabel}`,
    epoch: (e) => ({ order: root.fork(`epoch-${e}`), augment: root, dropout: root, noise: root }),
    state: () => root.state(),
    setState: (s) => {
      if (s) root.setState(s);
    },
  };
}
