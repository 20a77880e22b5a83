/**
 * Exact fusion of an affine denoising step into the layer that follows (Linear, input side)
 * or precedes (Conv, output side) it, computed in float64 and returned as float32. (The
 * unfused reference steps the fusion must reproduce are in test/denoise/reference.ts.)
 *
 * Linear (denoiser on the input): eps_hat(x) = Wd (x + e) + bd, x' = c3 x - c1 eps_hat(x),
 * y = W x' + b. Writing M = c3 I - c1 Wd:
 *   W x' + b = W M x + (b - c1 W (Wd e + bd)) = W' x + b'.
 *
 * Conv (denoiser on the output, a 1x1 channel mix): eps_hat(y) = Wd y + c,
 * y' = c3 y - c1 eps_hat(y) = M y - c1 c. A convolution is linear in its weight, so
 * M conv(x, W) + M b = conv(x, M W) + M b with (M W)[:, :, i, j] = M W[:, :, i, j], for any
 * kernel, stride, padding and dilation (the step acts after the border handling).
 * With groups > 1 the identity y' = M y - c1 c still holds, but the fused weight can only
 * keep the grouped shape when M does not mix channels of different groups (Wd
 * block-diagonal by group); otherwise the fused conv needs groups = 1 (a denser, costlier
 * layer), which {@link fuseConvOutput} does only when asked.
 */
import { ModelError, UsageError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { matmul, type NumArray, transpose } from './linalg.js';
import type { StepCoefficients } from './schedule.js';

/** Weight layout of a Linear: PyTorch / Gemm(transB=1) `[out, in]`, or ONNX MatMul `[in, out]` (y = x W). */
export type LinearLayout = 'out-in' | 'in-out';

/** The reverse-step coefficients fusion needs. */
export type FuseCoefficients = Pick<StepCoefficients, 'c1' | 'c2' | 'c3'>;

/** Input-side denoiser of a Linear: eps_hat(x) = wd (x + e) + bd, wd `[in, in]` row-major. */
export interface LinearDenoiser {
  wd: NumArray;
  bd: NumArray;
  e: NumArray;
}

/** Output-side 1x1 denoiser of a Conv: eps_hat(y) = wd y + c over channels, wd `[out, out]`. */
export interface ChannelDenoiser {
  wd: NumArray;
  c: NumArray;
}

/** Options of {@link fuseLinearInput}. */
export interface FuseLinearOptions {
  weight: NumArray;
  /** null/undefined: the layer has no bias (b = 0). */
  bias?: NumArray | null;
  inFeatures: number;
  outFeatures: number;
  layout: LinearLayout;
  denoiser: LinearDenoiser;
  coeffs: FuseCoefficients;
  /**
   * Stochastic DDPM step: adds c2 W z to the bias with z ~ N(0, I) drawn from `rng`. Off by
   * default; a fused model then depends on the draw (reproducible only through the seed).
   */
  stochastic?: { rng: Rng };
  /** Layer name used in error messages. */
  name?: string;
  /**
   * W Wd (out x in, float64) computed elsewhere (a compiled matrix product): then
   * W' = c3 W − c1 (W Wd), the same map as W (c3 I − c1 Wd).
   */
  product?: Float64Array;
}

/** A fused Linear in the same layout as its input. */
export interface FusedLinear {
  weight: Float32Array;
  /** Always returned; when the layer had no bias it holds b' and the caller must add it. */
  bias: Float32Array;
  layout: LinearLayout;
  /** Whether the original layer had a bias. */
  hadBias: boolean;
  /** Whether b' is exactly zero (a bias-less layer then needs no new bias). */
  biasIsZero: boolean;
}

function need(a: NumArray, n: number, what: string, name: string): void {
  if (a.length !== n)
    throw new ModelError(`layer '${name}': ${what} has ${a.length} values, expected ${n}`);
}

function checkCoeffs(coeffs: FuseCoefficients, name: string): void {
  for (const k of ['c1', 'c2', 'c3'] as const) {
    if (!Number.isFinite(coeffs[k]))
      throw new UsageError(`layer '${name}': coefficient ${k} is not finite`);
  }
}

/** M = c3 I - c1 Wd (n x n, float64). */
export function denoiseMap(
  wd: NumArray,
  n: number,
  coeffs: Pick<FuseCoefficients, 'c1' | 'c3'>,
): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) m[i] = -coeffs.c1 * wd[i]!;
  for (let i = 0; i < n; i++) m[i * n + i]! += coeffs.c3;
  return m;
}

function allZero(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** Cache tile of {@link combineProduct}'s transposed reads. */
const TILE = 64;

/**
 * c3 W − c1 P as float32 in W's stored layout, P (float64) rows x cols as W is (W·Wd of
 * a Linear, out x in; Wd·W of a conv): one pass, with P read transposed by tiles where W
 * is stored in x out (`inOut`).
 */
function combineProduct(
  weight: NumArray,
  product: Float64Array,
  coeffs: FuseCoefficients,
  nOut: number,
  nIn: number,
  inOut: boolean,
): Float32Array {
  const { c1, c3 } = coeffs;
  const fw = new Float32Array(nOut * nIn);
  if (!inOut) {
    for (let k = 0; k < fw.length; k++) fw[k] = c3 * weight[k]! - c1 * product[k]!;
    return fw;
  }
  for (let i0 = 0; i0 < nIn; i0 += TILE) {
    const i1 = Math.min(nIn, i0 + TILE);
    for (let o0 = 0; o0 < nOut; o0 += TILE) {
      const o1 = Math.min(nOut, o0 + TILE);
      for (let i = i0; i < i1; i++)
        for (let o = o0; o < o1; o++)
          fw[i * nOut + o] = c3 * weight[i * nOut + o]! - c1 * product[o * nIn + i]!;
    }
  }
  return fw;
}

/** W x (out values, float64) for W stored in `layout`, each sum over inputs in order. */
function applyWeight(
  weight: NumArray,
  x: Float64Array,
  nOut: number,
  nIn: number,
  layout: LinearLayout,
): Float64Array {
  const y = new Float64Array(nOut);
  if (layout === 'out-in') {
    for (let o = 0; o < nOut; o++) {
      let s = 0;
      for (let i = 0; i < nIn; i++) s += weight[o * nIn + i]! * x[i]!;
      y[o] = s;
    }
  } else {
    for (let i = 0; i < nIn; i++) {
      const xi = x[i]!;
      for (let o = 0; o < nOut; o++) y[o]! += weight[i * nOut + o]! * xi;
    }
  }
  return y;
}

/**
 * Fuses an input-side denoiser into a Linear: W' = W (c3 I - c1 Wd),
 * b' = b - c1 W (Wd e + bd) (+ c2 W z when `stochastic` is given).
 * @param opts - weights, sizes, layout, denoiser and coefficients
 * @example
 * const f = fuseLinearInput({ weight, bias, inFeatures: 4, outFeatures: 3, layout: 'out-in',
 *   denoiser: { wd, bd, e }, coeffs: coefficients(makeSchedule(), 2) });
 * f.weight; // Float32Array [3 * 4]
 */
export function fuseLinearInput(opts: FuseLinearOptions): FusedLinear {
  const { weight, inFeatures: nIn, outFeatures: nOut, layout, denoiser, coeffs } = opts;
  const name = opts.name ?? 'linear';
  need(weight, nIn * nOut, 'weight', name);
  if (opts.bias) need(opts.bias, nOut, 'bias', name);
  need(denoiser.wd, nIn * nIn, 'denoiser weight', name);
  need(denoiser.bd, nIn, 'denoiser bias', name);
  need(denoiser.e, nIn, 'denoiser time embedding', name);
  checkCoeffs(coeffs, name);
  let fw: Float32Array;
  if (opts.product) {
    need(opts.product, nIn * nOut, 'product W·Wd', name);
    fw = combineProduct(weight, opts.product, coeffs, nOut, nIn, layout === 'in-out');
  } else {
    // Work on W as out x in whatever the layout: W' = W M, transposed back for 'in-out'.
    const wOI = layout === 'out-in' ? Float64Array.from(weight) : transpose(weight, nIn, nOut);
    const fOI = matmul(wOI, denoiseMap(denoiser.wd, nIn, coeffs), nOut, nIn, nIn);
    fw = Float32Array.from(layout === 'out-in' ? fOI : transpose(fOI, nOut, nIn));
  }
  // v = Wd e + bd, then b' = b - c1 W v (+ c2 W z), W read in its own layout.
  const v = Float64Array.from(denoiser.bd);
  // A closed-form denoiser has no time embedding (e = 0): then v = bd.
  if (denoiser.e.some((x) => x !== 0)) {
    for (let i = 0; i < nIn; i++) {
      let s = denoiser.bd[i]!;
      for (let j = 0; j < nIn; j++) s += denoiser.wd[i * nIn + j]! * denoiser.e[j]!;
      v[i] = s;
    }
  }
  let z: Float64Array | null = null;
  if (opts.stochastic) {
    z = new Float64Array(nIn);
    opts.stochastic.rng.fillNormal(z);
  }
  const wv = applyWeight(weight, v, nOut, nIn, layout);
  const wz = z ? applyWeight(weight, z, nOut, nIn, layout) : null;
  const fb = new Float32Array(nOut);
  for (let o = 0; o < nOut; o++)
    fb[o] = (opts.bias ? opts.bias[o]! : 0) - coeffs.c1 * wv[o]! + (wz ? coeffs.c2 * wz[o]! : 0);
  return {
    weight: fw,
    bias: fb,
    layout,
    hadBias: !!opts.bias,
    biasIsZero: allZero(fb),
  };
}

/** Options of {@link fuseConvOutput}. */
export interface FuseConvOptions {
  /** `[out, in / groups, kh, kw]` */
  weight: NumArray;
  bias?: NumArray | null;
  outChannels: number;
  inChannelsPerGroup: number;
  kernelH: number;
  kernelW: number;
  /** default 1 */
  groups?: number;
  denoiser: ChannelDenoiser;
  coeffs: FuseCoefficients;
  /**
   * With groups > 1 and a denoiser that mixes channels across groups, return a dense
   * (groups = 1) fused weight `[out, in, kh, kw]` instead of failing. Not computation-free.
   */
  allowDenseExpansion?: boolean;
  name?: string;
  /**
   * Wd W (out x in/groups·kh·kw, float64) computed elsewhere (a compiled matrix product):
   * then W' = c3 W − c1 (Wd W), the same as M W. Not used when the weight is expanded to
   * a dense one.
   */
  product?: Float64Array;
}

/** A fused Conv; `groups` / `inChannelsPerGroup` describe the returned weight. */
export interface FusedConv {
  weight: Float32Array;
  bias: Float32Array;
  groups: number;
  inChannelsPerGroup: number;
  hadBias: boolean;
  biasIsZero: boolean;
}

/**
 * Fuses an output-side 1x1 denoiser into a Conv: W'[:, :, i, j] = M W[:, :, i, j],
 * b' = M b - c1 c with M = c3 I - c1 Wd. Exact for any kernel, stride, padding, dilation.
 * With groups > 1, Wd must not couple channels of different groups (else UsageError, or a
 * dense groups = 1 weight with `allowDenseExpansion`).
 * @param opts - weights, shapes, denoiser and coefficients
 * @example
 * const f = fuseConvOutput({ weight, bias, outChannels: 8, inChannelsPerGroup: 4,
 *   kernelH: 3, kernelW: 3, denoiser: { wd, c }, coeffs });
 */
export function fuseConvOutput(opts: FuseConvOptions): FusedConv {
  const { outChannels: co, kernelH: kh, kernelW: kw, denoiser, coeffs } = opts;
  const groups = opts.groups ?? 1;
  const name = opts.name ?? 'conv';
  if (!Number.isInteger(groups) || groups < 1 || co % groups !== 0) {
    throw new ModelError(`layer '${name}': groups ${groups} does not divide ${co} output channels`);
  }
  let ipg = opts.inChannelsPerGroup;
  need(opts.weight, co * ipg * kh * kw, 'weight', name);
  if (opts.bias) need(opts.bias, co, 'bias', name);
  need(denoiser.wd, co * co, 'denoiser weight', name);
  need(denoiser.c, co, 'denoiser bias', name);
  checkCoeffs(coeffs, name);
  const opg = co / groups;
  let weight: NumArray = opts.weight;
  let outGroups = groups;
  if (groups > 1) {
    let mixes = false;
    for (let o = 0; o < co && !mixes; o++) {
      for (let p = 0; p < co; p++) {
        if (Math.floor(o / opg) !== Math.floor(p / opg) && denoiser.wd[o * co + p] !== 0) {
          mixes = true;
          break;
        }
      }
    }
    if (mixes) {
      if (!opts.allowDenseExpansion) {
        throw new UsageError(
          `layer '${name}': the output denoiser mixes channels of different groups of this ${groups}-group conv; the fused layer would need groups=1 (more FLOPs). Use a group-block-diagonal denoiser or allow dense expansion`,
        );
      }
      // Expand to an equivalent dense conv: output channel o reads only its group's inputs.
      const cin = ipg * groups;
      const dense = new Float64Array(co * cin * kh * kw);
      const ks = kh * kw;
      for (let o = 0; o < co; o++) {
        const g = Math.floor(o / opg);
        for (let k = 0; k < ipg; k++) {
          for (let s = 0; s < ks; s++) {
            dense[(o * cin + g * ipg + k) * ks + s] = opts.weight[(o * ipg + k) * ks + s]!;
          }
        }
      }
      weight = dense;
      ipg = cin;
      outGroups = 1;
    }
  }
  const m = denoiseMap(denoiser.wd, co, coeffs);
  // Treat W as a co x (ipg * kh * kw) matrix: W' = M W. Block-diagonal M keeps each group's
  // rows built from rows of the same group, so the grouped layout stays valid.
  const cols = ipg * kh * kw;
  let fw: Float32Array;
  if (opts.product && outGroups === groups) {
    need(opts.product, co * cols, 'product Wd·W', name);
    fw = combineProduct(weight, opts.product, coeffs, co, cols, false);
  } else {
    const f64 = new Float64Array(co * cols);
    for (let o = 0; o < co; o++) {
      for (let p = 0; p < co; p++) {
        const mop = m[o * co + p]!;
        if (mop === 0) continue;
        for (let j = 0; j < cols; j++) f64[o * cols + j]! += mop * weight[p * cols + j]!;
      }
    }
    fw = Float32Array.from(f64);
  }
  const fb = new Float32Array(co);
  for (let o = 0; o < co; o++) {
    let s = 0;
    if (opts.bias) for (let p = 0; p < co; p++) s += m[o * co + p]! * opts.bias[p]!;
    fb[o] = s - coeffs.c1 * denoiser.c[o]!;
  }
  return {
    weight: fw,
    bias: fb,
    groups: outGroups,
    inChannelsPerGroup: ipg,
    hadBias: !!opts.bias,
    biasIsZero: allZero(fb),
  };
}
