/**
 * The diffusion schedule of DenoiseRep (linear betas, authors' settings 1e-4 .. 2e-3 over
 * 1000 steps), the DDPM reverse-step coefficients at one timestep, and the assignment of a
 * timestep to each selected layer.
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
}

/** A linear-beta diffusion schedule. Arrays are indexed by t - 1 for step t = 1..T. */
export interface Schedule {
  timesteps: number;
  betaStart: number;
  betaEnd: number;
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
  const betaStart = opts.betaStart ?? 1e-4;
  const betaEnd = opts.betaEnd ?? 2e-3;
  if (!Number.isInteger(timesteps) || timesteps < 1) {
    throw new UsageError(`timesteps must be a positive integer, got ${timesteps}`);
  }
  if (!(betaStart > 0 && betaStart < 1)) {
    throw new UsageError(`betaStart must be in (0, 1), got ${betaStart}`);
  }
  if (!(betaEnd > 0 && betaEnd < 1)) {
    throw new UsageError(`betaEnd must be in (0, 1), got ${betaEnd}`);
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
  return { timesteps, betaStart, betaEnd, betas, alphas, alphaBars };
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

/** How layer timesteps are chosen: the paper's N..1, the public code's, or explicit. */
export type TimestepMode = 'paper' | 'public-code' | Readonly<Record<string, number>>;

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
