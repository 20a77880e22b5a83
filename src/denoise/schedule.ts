/**
 * The diffusion schedule of DenoiseRep (linear betas, authors' settings 1e-4 .. 2e-3 over
 * 1000 steps), the DDPM reverse-step coefficients at one timestep, and the assignment of a
 * timestep to each selected layer.
 *
 * The noise level is configurable two ways: `noiseScale` multiplies every beta (k times the
 * paper's betas gives, at the small t the layers use, about √k times its c1 and forward
 * noise s2), and the timestep mode says how timesteps spread over the layers (the paper's
 * N..1, or evenly from any first to any last timestep, which reaches noisier steps).
 */
import { UsageError } from '../util/errors.js';

/** Options of {@link makeSchedule}. */
export interface ScheduleOptions {
  /** Number of diffusion steps T (default 1000). */
  timesteps?: number;
  /** beta_1 (default 1e-4). */
  betaStart?: number;
  /** beta_T (default 2e-3). */
  betaEnd?: number;
  /**
   * Multiplies betaStart and betaEnd (default 1): the noise level relative to the given
   * betas. The schedule's betaStart/betaEnd are the scaled values, so a schedule rebuilt
   * from them (denoiser files, training graphs) needs no scale.
   */
  noiseScale?: number;
}

/** A linear-beta diffusion schedule. Arrays are indexed by t - 1 for step t = 1..T. */
export interface Schedule {
  timesteps: number;
  /** beta_1 after the noise scale. */
  betaStart: number;
  /** beta_T after the noise scale. */
  betaEnd: number;
  /** The scale applied to the given betas (1 unless asked). */
  noiseScale: number;
  betas: Float64Array;
  alphas: Float64Array;
  /** abar_t = prod_{s <= t} alpha_s */
  alphaBars: Float64Array;
}

/** Coefficients of one DDPM reverse step at timestep t. */
export interface StepCoefficients {
  t: number;
  /** (1 - alpha_t) / (sqrt(1 - abar_t) sqrt(alpha_t)): weight of the predicted noise */
  c1: number;
  /** sqrt(beta_t): posterior noise scale (stochastic sampling only) */
  c2: number;
  /** 1 / sqrt(alpha_t): scale of the input */
  c3: number;
  /** sqrt(abar_t): signal scale of the forward process x_t = s1 x + s2 eps */
  s1: number;
  /** sqrt(1 - abar_t): noise scale of the forward process */
  s2: number;
  alpha: number;
  beta: number;
  alphaBar: number;
}

/**
 * Builds a linear beta schedule: beta_t evenly spaced from betaStart (t = 1) to betaEnd
 * (t = T), like torch.linspace; alpha_t = 1 - beta_t; abar_t the running product.
 * @param opts - timesteps (positive integer), 0 < betaStart < betaEnd < 1
 * @example
 * const s = makeSchedule(); // T = 1000, betas 1e-4 .. 2e-3
 * s.alphaBars[0]; // 1 - 1e-4
 */
export function makeSchedule(opts: ScheduleOptions = {}): Schedule {
  const timesteps = opts.timesteps ?? 1000;
  const noiseScale = opts.noiseScale ?? 1;
  if (!(noiseScale > 0) || !Number.isFinite(noiseScale)) {
    throw new UsageError(`noise scale must be a positive number, got ${noiseScale}`);
  }
  const betaStart = (opts.betaStart ?? 1e-4) * noiseScale;
  const betaEnd = (opts.betaEnd ?? 2e-3) * noiseScale;
  if (!Number.isInteger(timesteps) || timesteps < 1) {
    throw new UsageError(`timesteps must be a positive integer, got ${timesteps}`);
  }
  const scaled = noiseScale === 1 ? '' : ` (after noise scale ${noiseScale})`;
  if (!(betaStart > 0 && betaStart < 1)) {
    throw new UsageError(`betaStart must be in (0, 1), got ${betaStart}${scaled}`);
  }
  if (!(betaEnd > 0 && betaEnd < 1)) {
    throw new UsageError(`betaEnd must be in (0, 1), got ${betaEnd}${scaled}`);
  }
  if (!(betaStart < betaEnd)) {
    throw new UsageError(`betaStart (${betaStart}) must be smaller than betaEnd (${betaEnd})`);
  }
  const betas = new Float64Array(timesteps);
  const alphas = new Float64Array(timesteps);
  const alphaBars = new Float64Array(timesteps);
  let prod = 1;
  for (let i = 0; i < timesteps; i++) {
    const beta =
      timesteps === 1 ? betaStart : betaStart + ((betaEnd - betaStart) * i) / (timesteps - 1);
    betas[i] = beta;
    alphas[i] = 1 - beta;
    prod *= 1 - beta;
    alphaBars[i] = prod;
  }
  return { timesteps, betaStart, betaEnd, noiseScale, betas, alphas, alphaBars };
}

/**
 * DDPM reverse-step coefficients at timestep t (1-based): x' = c3 x - c1 eps_hat (+ c2 z).
 * @param schedule - from {@link makeSchedule}
 * @param t - integer in 1..T
 * @example
 * const { c1, c3 } = coefficients(makeSchedule(), 2); // c1 ≈ 0.0072, c3 ≈ 1.00005
 */
export function coefficients(schedule: Schedule, t: number): StepCoefficients {
  if (!Number.isInteger(t) || t < 1 || t > schedule.timesteps) {
    throw new UsageError(`timestep t must be an integer in 1..${schedule.timesteps}, got ${t}`);
  }
  const beta = schedule.betas[t - 1]!;
  const alpha = schedule.alphas[t - 1]!;
  const alphaBar = schedule.alphaBars[t - 1]!;
  const s1 = Math.sqrt(alphaBar);
  const s2 = Math.sqrt(1 - alphaBar);
  return {
    t,
    c1: (1 - alpha) / (s2 * Math.sqrt(alpha)),
    c2: Math.sqrt(beta),
    c3: 1 / Math.sqrt(alpha),
    s1,
    s2,
    alpha,
    beta,
    alphaBar,
  };
}

/**
 * Timesteps spread evenly over the layers: the first layer gets `first`, the last `last`,
 * layer l of N (0-based) round(first + (last − first)·l/(N − 1)). `{ first: N, last: 1 }`
 * is the paper's assignment.
 */
export interface TimestepSpread {
  spread: 'linear';
  first: number;
  last: number;
}

/** How layer timesteps are chosen: the paper's N..1, the public code's, spread, or explicit. */
export type TimestepMode =
  'paper' | 'public-code' | TimestepSpread | Readonly<Record<string, number>>;

function isSpread(mode: unknown): mode is TimestepSpread {
  return (
    typeof mode === 'object' && mode !== null && (mode as { spread?: unknown }).spread === 'linear'
  );
}

/** A timestep mode as a flag spells it. */
export type TimestepFlag = 'paper' | 'public-code' | `linear:${number}:${number}`;

/**
 * Parses a timestep mode flag: `paper`, `public-code`, or `linear:<first>:<last>`.
 * @param v - the flag's value
 * @example parseTimestepMode('linear:100:1') // { spread: 'linear', first: 100, last: 1 }
 */
export function parseTimestepMode(v: string): TimestepMode {
  if (v === 'paper' || v === 'public-code') return v;
  const m = /^linear:(\d+):(\d+)$/.exec(v);
  if (m) return { spread: 'linear', first: Number(m[1]), last: Number(m[2]) };
  throw new UsageError(
    `--timesteps must be paper, public-code or linear:<first>:<last> (e.g. linear:100:1), got '${v}'`,
  );
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('.');
  return i < 0 ? '' : path.slice(0, i);
}

function isAncestor(ancestor: string, path: string): boolean {
  return ancestor === '' || path.startsWith(`${ancestor}.`);
}

/**
 * Assigns a diffusion timestep to each selected layer.
 *
 * - `'paper'`: with N layers in forward order, layer l = 1..N gets t = N - l + 1.
 * - `'public-code'`: what the authors' code effectively does. Its conversion walks the
 *   module tree recursively, passing the current counter N into each child call and
 *   decrementing it only locally after converting a direct-child layer; decrements made
 *   inside a recursive call never reach the caller. So a layer gets N minus the number of
 *   converted layers that come before it and are direct children of one of its ancestor
 *   modules (its parent, its grandparent, ... the root). In timm-style ViTs no converted
 *   layer sits beside a block, so this is N minus the layer's rank among the converted
 *   direct children of its parent: patch_embed.proj, each qkv, fc1 and head get N; each
 *   attn.proj and fc2 get N - 1. Layer names are module paths ('blocks.0.mlp.fc1'), listed
 *   in module registration order (normally the forward order).
 * - `{ spread: 'linear', first, last }`: evenly from `first` (first layer) to `last`.
 * - a record `{ layerName: t }`: every selected layer must be present, no other names.
 *
 * @param layerNames - module paths of the selected layers in forward order
 * @param mode - see above
 * @param timesteps - T of the schedule, the largest valid t (default 1000)
 * @returns a Map from layer name to t, in the order of `layerNames`
 * @example
 * assignTimesteps(['fc1', 'fc2', 'head'], 'paper'); // fc1 -> 3, fc2 -> 2, head -> 1
 */
export function assignTimesteps(
  layerNames: readonly string[],
  mode: TimestepMode,
  timesteps = 1000,
): Map<string, number> {
  const n = layerNames.length;
  const seen = new Set<string>();
  for (const name of layerNames) {
    if (name === '') throw new UsageError('a selected layer has an empty name');
    if (seen.has(name)) throw new UsageError(`layer '${name}' is selected twice`);
    seen.add(name);
  }
  const out = new Map<string, number>();
  const check = (name: string, t: number) => {
    if (!Number.isInteger(t) || t < 1 || t > timesteps) {
      throw new UsageError(
        `timestep for layer '${name}' must be an integer in 1..${timesteps}, got ${t}` +
          (typeof mode === 'string' ? ` (${n} layers selected, mode '${mode}')` : ''),
      );
    }
    out.set(name, t);
  };
  if (mode === 'paper') {
    for (let l = 0; l < n; l++) check(layerNames[l]!, n - l);
  } else if (mode === 'public-code') {
    layerNames.forEach((name, l) => {
      let before = 0;
      for (let k = 0; k < l; k++) {
        const other = layerNames[k]!;
        if (isAncestor(other, name)) {
          throw new UsageError(
            `layer '${name}' lies inside selected layer '${other}': the public code never converts layers nested in a converted one`,
          );
        }
        if (isAncestor(parentOf(other), name)) before++;
      }
      check(name, n - before);
    });
  } else if (isSpread(mode)) {
    const { first, last } = mode;
    for (const [k, v] of [
      ['first', first],
      ['last', last],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > timesteps)
        throw new UsageError(
          `timestep spread: ${k} must be an integer in 1..${timesteps}, got ${v}`,
        );
    }
    layerNames.forEach((name, l) =>
      check(name, n === 1 ? first : Math.round(first + ((last - first) * l) / (n - 1))),
    );
  } else if (typeof mode === 'object' && mode !== null) {
    for (const key of Object.keys(mode)) {
      if (!seen.has(key))
        throw new UsageError(`timestep given for layer '${key}', which is not selected`);
    }
    for (const name of layerNames) {
      if (!Object.hasOwn(mode, name)) throw new UsageError(`no timestep given for layer '${name}'`);
      check(name, mode[name]!);
    }
  } else {
    throw new UsageError(
      `unknown timestep mode '${String(mode)}' (expected 'paper', 'public-code' or a mapping)`,
    );
  }
  return out;
}
