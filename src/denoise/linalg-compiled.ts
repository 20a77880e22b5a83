/**
 * The dense float64 linear algebra of the closed-form fit at real sizes (inputs 3,072 wide),
 * with every O(n³) step a matrix product run by ONNX Runtime's float64 Gemm kernel
 * (multi-threaded, compiled) and only O(n²·b) work left in JavaScript. The JavaScript
 * routines of ./linalg.ts stay the reference these are tested against, and run the small
 * cases (below {@link CompiledOptions.base}) where a session call would cost more than it saves.
 *
 * - {@link spdInverseCompiled}: A⁻¹ of a symmetric positive definite matrix by recursive
 *   block elimination with Schur complements (about (4/3) n³ flops, all in Gemm).
 * - {@link symmetricEigenvaluesCompiled}: eigenvalues in two stages: a blocked Householder
 *   reduction to a band of half-width b (Gemm: A22 V and a rank-2b update per panel), then
 *   Givens bulge chasing from band to tridiagonal (about 6 b n² flops in JavaScript, on the
 *   band only, which stays in cache) and the implicit QL iteration (O(n²)).
 * - {@link matmulCompiled}: C = A B.
 *
 * Why not an eigendecomposition with vectors: its back-transformations and the tridiagonal
 * eigenvector step cost 6-9 n³ flops more (and a one-stage tridiagonalisation is bound by
 * memory bandwidth, n³/3 matrix reads). The closed-form denoiser is a rational function of
 * the covariance, Wd = s2 (s1² S + s2² I)⁻¹, so one inverse gives it; its eigenvalues, and
 * so the spectrum of the fused map c3 I − c1 Wd, follow from the eigenvalues of S alone.
 * Measured figures are in the README.
 */
import { availableParallelism } from 'node:os';
import { GraphBuilder } from '../onnx/builder.js';
import { Session } from '../runtime/session.js';
import {
  Band,
  bandEigenvalues,
  cholesky,
  identity,
  type NumArray,
  type SolveResult,
  solveLower,
  symmetricEigenvalues,
  symmetriseInPlace,
} from './linalg.js';

/** Options of a {@link DenseKernels} instance. */
export interface CompiledOptions {
  /** ONNX Runtime intra-op threads (default: every core). */
  threads?: number;
  /** Sizes up to this run in JavaScript (default 128). */
  base?: number;
  /** Half-bandwidth of the first eigenvalue stage (default 16). */
  band?: number;
}

/** Options of one matrix product. */
export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** default 1 */
  alpha?: number;
  /** Weight of `c` (default 1 when `c` is given). */
  beta?: number;
}

/** A row-major float64 matrix with its shape. */
interface Mat {
  data: Float64Array;
  rows: number;
  cols: number;
}

/**
 * Float64 matrix kernels run by ONNX Runtime: one small session per product variant,
 * created on first use and kept until {@link DenseKernels.release}.
 * @example
 * const k = new DenseKernels({ threads: 2 });
 * const c = await k.gemm(a, [n, m], b, [m, p]);
 * await k.release();
 */
export class DenseKernels {
  readonly threads: number;
  readonly base: number;
  readonly band: number;
  private readonly sessions = new Map<string, Promise<Session>>();

  /** @param opts - threads, JavaScript cut-off size, band half-width */
  constructor(opts: CompiledOptions = {}) {
    this.threads = opts.threads ?? availableParallelism();
    this.base = Math.max(8, opts.base ?? 128);
    this.band = Math.max(2, opts.band ?? 16);
  }

  private session(o: Required<GemmOptions>, withC: boolean): Promise<Session> {
    const key = `${+o.transA}${+o.transB}:${o.alpha}:${withC ? o.beta : '-'}`;
    let s = this.sessions.get(key);
    if (!s) {
      const b = new GraphBuilder({ name: `gemm_${key}`, opset: 17 });
      const ins = [b.input('a', 'float64', ['a0', 'a1']), b.input('b', 'float64', ['b0', 'b1'])];
      if (withC) ins.push(b.input('c', 'float64', ['c0', 'c1']));
      const attrs = { transA: +o.transA, transB: +o.transB, alpha: o.alpha, beta: o.beta };
      b.output(b.op1('Gemm', ins, attrs), 'y');
      s = Session.create(b.build().model, {
        threads: this.threads,
        source: 'float64 Gemm',
        spin: false, // the sessions take turns (see SessionOptions.spin)
        // Outputs freed when they die: an arena per session, in each of the layer pool's
        // workers, held about 0.5 GB per worker after its largest layer.
        lowMemory: true,
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * alpha op(A) op(B) + beta C, op = transpose when asked; A is given as stored (rows x
   * cols before any transpose).
   * @param a - A, row-major
   * @param aShape - [rows, cols] of A as stored
   * @param b - B, row-major
   * @param bShape - [rows, cols] of B as stored
   * @param c - optional C, the shape of the result
   * @param opts - transposes, alpha, beta
   */
  async gemm(
    a: Float64Array,
    aShape: [number, number],
    b: Float64Array,
    bShape: [number, number],
    c?: Float64Array,
    opts: GemmOptions = {},
  ): Promise<Float64Array> {
    const o = {
      transA: !!opts.transA,
      transB: !!opts.transB,
      alpha: opts.alpha ?? 1,
      beta: opts.beta ?? 1,
    };
    const rows = o.transA ? aShape[1] : aShape[0];
    const inner = o.transA ? aShape[0] : aShape[1];
    const innerB = o.transB ? bShape[1] : bShape[0];
    const cols = o.transB ? bShape[0] : bShape[1];
    if (inner !== innerB) {
      throw new RangeError(
        `gemm: inner sizes differ (${inner} vs ${innerB}) for A [${aShape}] and B [${bShape}]`,
      );
    }
    if (a.length !== aShape[0] * aShape[1] || b.length !== bShape[0] * bShape[1])
      throw new RangeError(`gemm: buffer sizes do not match shapes [${aShape}] and [${bShape}]`);
    if (c && c.length !== rows * cols)
      throw new RangeError(`gemm: C has ${c.length} values, expected ${rows * cols}`);
    if (rows === 0 || cols === 0) return new Float64Array(rows * cols);
    if (inner === 0) {
      const out = new Float64Array(rows * cols);
      if (c) for (let i = 0; i < out.length; i++) out[i] = o.beta * c[i]!;
      return out;
    }
    const s = await this.session(o, !!c);
    const t = (data: Float64Array, dims: number[]) => ({ dtype: 'float64' as const, dims, data });
    const feeds: Record<string, ReturnType<typeof t>> = { a: t(a, aShape), b: t(b, bShape) };
    if (c) feeds.c = t(c, [rows, cols]);
    const { y } = await s.run(feeds);
    return y!.data as Float64Array;
  }

  /** Frees every session. */
  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

/** Copies rows r0..r0+nr, columns c0..c0+nc of an n-column matrix into a new matrix. */
function block(a: Float64Array, n: number, r0: number, c0: number, nr: number, nc: number): Mat {
  const out = new Float64Array(nr * nc);
  for (let i = 0; i < nr; i++) {
    const src = (r0 + i) * n + c0;
    out.set(a.subarray(src, src + nc), i * nc);
  }
  return { data: out, rows: nr, cols: nc };
}

/** Writes `m` into an n-column matrix at row r0, column c0. */
function put(a: Float64Array, n: number, r0: number, c0: number, m: Mat): void {
  for (let i = 0; i < m.rows; i++)
    a.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), (r0 + i) * n + c0);
}

/** Where to split n (> 1) for the recursions: about half, on a multiple of 32 when large. */
function split(n: number): number {
  const half = Math.floor(n / 2);
  return half >= 64 ? half - (half % 32) : Math.max(1, half);
}

type Inverse = { ok: true; x: Float64Array } | { ok: false; pivot: number; value: number };

/**
 * Writes the transpose of `m` into an n-column matrix at row r0, column c0, in tiles;
 * `stride` is the distance between m's rows (default m.cols: m stored alone).
 */
function putTransposed(
  a: Float64Array,
  n: number,
  r0: number,
  c0: number,
  m: Mat,
  stride = m.cols,
): void {
  const T = 32;
  for (let i0 = 0; i0 < m.rows; i0 += T)
    for (let j0 = 0; j0 < m.cols; j0 += T) {
      const i1 = Math.min(m.rows, i0 + T);
      const j1 = Math.min(m.cols, j0 + T);
      for (let j = j0; j < j1; j++) {
        const row = (r0 + j) * n + c0;
        for (let i = i0; i < i1; i++) a[row + i] = m.data[i * stride + j]!;
      }
    }
}

/** XᵀX for lower-triangular X (n x n, small): Σ x_ri x_rj over r >= max(i, j). */
function lowerGramJs(x: Float64Array, n: number): Float64Array {
  const g = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    const row = r * n;
    for (let i = 0; i <= r; i++) {
      const xi = x[row + i]!;
      if (xi === 0) continue;
      const gi = i * n;
      for (let j = i; j <= r; j++) g[gi + j]! += xi * x[row + j]!;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i]!;
  return g;
}

/**
 * A⁻¹ by recursive block elimination, reading only A's lower triangle. With
 * A = [A11 A21ᵀ; A21 A22], B11 = A11⁻¹ and W = A21 B11, the Schur complement
 * S = A22 − W A21ᵀ is SPD, and with B22 = S⁻¹, B21 = −B22 W:
 * A⁻¹ = [B11 − Wᵀ B21, B21ᵀ; B21, B22]. Four products per level, about (4/3) n³ flops in
 * all (a Cholesky factor's inverse and its Gram matrix took 2 n³). The result is exactly
 * symmetric. The leaves factor Schur complements of A, whose Cholesky pivots are A's own,
 * so a failure names the same pivot as a Cholesky factorisation of A.
 */
async function inverseRec(
  a: Float64Array,
  n: number,
  k: DenseKernels,
  minPivot: number,
  offset: number,
): Promise<Inverse> {
  if (n <= k.base) {
    const f = cholesky(a, n, { minPivot });
    if (!f.ok) return { ok: false, pivot: f.pivot + offset, value: f.value };
    return { ok: true, x: lowerGramJs(solveLower(f.l, identity(n), n, n), n) };
  }
  const h = split(n);
  const m = n - h;
  const a21 = block(a, n, h, 0, m, h).data;
  const r1 = await inverseRec(block(a, n, 0, 0, h, h).data, h, k, minPivot, offset);
  if (!r1.ok) return r1;
  const w = await k.gemm(a21, [m, h], r1.x, [h, h]);
  const schur = await k.gemm(w, [m, h], a21, [m, h], block(a, n, h, h, m, m).data, {
    transB: true,
    alpha: -1,
    beta: 1,
  });
  const r2 = await inverseRec(schur, m, k, minPivot, offset + h);
  if (!r2.ok) return r2;
  const b21 = await k.gemm(r2.x, [m, m], w, [m, h], undefined, { alpha: -1 });
  const b11 = await k.gemm(w, [m, h], b21, [m, h], r1.x, { transA: true, alpha: -1, beta: 1 });
  symmetriseInPlace(b11, h);
  const x = new Float64Array(n * n);
  put(x, n, 0, 0, { data: b11, rows: h, cols: h });
  put(x, n, h, 0, { data: b21, rows: m, cols: h });
  putTransposed(x, n, 0, h, { data: b21, rows: m, cols: h });
  put(x, n, h, h, { data: r2.x, rows: m, cols: m });
  return { ok: true, x };
}

/**
 * Inverse of a symmetric positive definite matrix (only its lower triangle is read), with
 * its O(n³) work in ONNX Runtime's float64 Gemm: the same result as {@link cholesky} and a
 * solve with I (the tests' reference spdInverse) up to rounding, and the same failure
 * report (the first pivot at or below `minPivot`).
 * @param a - SPD matrix, n x n
 * @param n - size
 * @param k - the kernels
 * @param opts - `minPivot` (default 0)
 * @example
 * const r = await spdInverseCompiled(a, 3072, kernels);
 * if (r.ok) r.x; // symmetric n x n
 */
export async function spdInverseCompiled(
  a: NumArray,
  n: number,
  k: DenseKernels,
  opts: { minPivot?: number } = {},
): Promise<SolveResult> {
  if (a.length !== n * n)
    throw new RangeError(`spdInverse: expected ${n * n} values, got ${a.length}`);
  const a64 = a instanceof Float64Array ? a : Float64Array.from(a);
  return inverseRec(a64, n, k, opts.minPivot ?? 0, 0);
}

/**
 * C = A B with A n x p and B p x m (row-major), through the compiled kernel above
 * `k.base` in every size, else in JavaScript.
 * @param a - n x p
 * @param b - p x m
 * @example await matmulCompiled(w, wd, 768, 3072, 3072, kernels)
 */
export async function matmulCompiled(
  a: NumArray,
  b: NumArray,
  n: number,
  p: number,
  m: number,
  k: DenseKernels,
): Promise<Float64Array> {
  const a64 = a instanceof Float64Array ? a : Float64Array.from(a);
  const b64 = b instanceof Float64Array ? b : Float64Array.from(b);
  return k.gemm(a64, [n, p], b64, [p, m]);
}

/**
 * Householder QR of a panel P (m x nb, row-major, overwritten): reflectors H_j = I − τ_j v_j
 * v_jᵀ (v_j[j] = 1, zero above) with H_{nr}···H_1 P = R. Returns V (m x nr), τ and R's
 * rows (R is written into P's upper triangle, zeros below). The work runs on a
 * column-major copy, so that every inner loop walks a contiguous column of length m.
 */
function panelQr(
  p: Float64Array,
  m: number,
  nb: number,
): { v: Float64Array; tau: Float64Array; nr: number } {
  const nr = Math.min(m, nb);
  const a = new Float64Array(m * nb); // column c at c * m
  for (let i = 0; i < m; i++) for (let c = 0; c < nb; c++) a[c * m + i] = p[i * nb + c]!;
  const tau = new Float64Array(nr);
  for (let j = 0; j < nr; j++) {
    const cj = j * m;
    const alpha = a[cj + j]!;
    let xnorm2 = 0;
    for (let i = j + 1; i < m; i++) xnorm2 += a[cj + i]! * a[cj + i]!;
    if (xnorm2 === 0) continue; // H_j = I: the column below the diagonal is already zero
    const beta = (alpha >= 0 ? -1 : 1) * Math.sqrt(alpha * alpha + xnorm2);
    const tj = (beta - alpha) / beta;
    tau[j] = tj;
    const scale = 1 / (alpha - beta);
    for (let i = j + 1; i < m; i++) a[cj + i]! *= scale; // v_j below its unit entry
    a[cj + j] = beta;
    // Apply H_j to each remaining column: s = τ vᵀ col, col −= s v.
    for (let c = j + 1; c < nb; c++) {
      const cc = c * m;
      let s = a[cc + j]!;
      for (let i = j + 1; i < m; i++) s += a[cj + i]! * a[cc + i]!;
      s *= tj;
      a[cc + j]! -= s;
      for (let i = j + 1; i < m; i++) a[cc + i]! -= s * a[cj + i]!;
    }
  }
  const v = new Float64Array(m * nr);
  for (let i = 0; i < m; i++) {
    const row = i * nb;
    for (let c = 0; c < nb; c++) p[row + c] = c >= i ? a[c * m + i]! : 0;
    const vr = i * nr;
    for (let j = 0; j < Math.min(i, nr); j++) v[vr + j] = a[j * m + i]!;
    if (i < nr) v[vr + i] = 1;
  }
  return { v, tau, nr };
}

/**
 * The upper-triangular T of H_1···H_nr = I − V T Vᵀ (forward, columnwise), from τ and the
 * Gram matrix G = VᵀV (nr x nr; a product, so the O(m·nr²) part runs in Gemm).
 */
function compactWy(g: Float64Array, tau: Float64Array, nr: number): Float64Array {
  const t = new Float64Array(nr * nr);
  for (let j = 0; j < nr; j++) {
    t[j * nr + j] = tau[j]!;
    if (j === 0 || tau[j] === 0) continue;
    // T[0:j, j] = −τ_j T[0:j, 0:j] (V[:, 0:j]ᵀ v_j), the last factor being G[0:j, j].
    for (let i = 0; i < j; i++) {
      let s = 0;
      for (let l = i; l < j; l++) s += t[i * nr + l]! * g[l * nr + j]!;
      t[i * nr + j] = -tau[j]! * s;
    }
  }
  return t;
}

/** Panels transformed between two trailing-matrix updates (the rank of each update / 2b). */
const PANELS_PER_UPDATE = 16;

/** Rows r0..r1-1 of a row-major matrix with `cols` columns: a view (Gemm reads it in place). */
function rowsOf(a: Float64Array, cols: number, r0: number, r1: number): Float64Array {
  return a.subarray(r0 * cols, r1 * cols);
}

/**
 * C − L Rᵀ for symmetric C (n x n) and a symmetric update (L Rᵀ = V Wᵀ + W Vᵀ), computed
 * as the top-left block and the bottom rows only (3/4 of the flops of one product), the
 * top-right block then filled as the transpose of the bottom-left.
 */
async function symmetricUpdate(
  c: Float64Array,
  n: number,
  l: Float64Array,
  r: Float64Array,
  rank: number,
  k: DenseKernels,
): Promise<Float64Array> {
  const o = { transB: true, alpha: -1, beta: 1 };
  const h = n >= 2 * k.base ? split(n) : 0;
  if (h === 0) return k.gemm(l, [n, rank], r, [n, rank], c, o);
  const m = n - h;
  const top = await k.gemm(
    rowsOf(l, rank, 0, h),
    [h, rank],
    rowsOf(r, rank, 0, h),
    [h, rank],
    block(c, n, 0, 0, h, h).data,
    o,
  );
  const bottom = await k.gemm(
    rowsOf(l, rank, h, n),
    [m, rank],
    r,
    [n, rank],
    rowsOf(c, n, h, n),
    o,
  );
  const out = new Float64Array(n * n);
  put(out, n, 0, 0, { data: top, rows: h, cols: h });
  out.set(bottom, h * n);
  // Top-right = (bottom-left)ᵀ: the first h columns of the bottom rows.
  putTransposed(out, n, 0, h, { data: bottom, rows: m, cols: h }, n);
  return out;
}

/**
 * Stage 1: reduces symmetric A to a band of half-width b by blocked Householder
 * transformations A ← Hᵀ A H, H = I − V T Vᵀ per panel of b columns, each applied as
 * A − V Wᵀ − W Vᵀ with W = X − ½ V (Tᵀ Vᵀ X), X = A V T. The updates of several panels
 * are held back as A − L Rᵀ (L = [V₁ W₁ V₂ W₂ …], R = [W₁ V₁ W₂ V₂ …]) and applied to the
 * trailing matrix in one Gemm of rank 2·b·panels; until then a panel's columns and A V
 * are corrected through L and R (thin products), so the large matrix is read about twice
 * per panel instead of six times. Every product runs in Gemm.
 */
async function reduceToBand(a: NumArray, n: number, b: number, k: DenseKernels): Promise<Band> {
  const band = new Band(n, b + 1);
  let t = symmetriseInPlace(Float64Array.from(a), n); // trailing matrix before the pending updates
  let off = 0; // global index of t's first row
  let m0 = n;
  let o = 0; // current panel's first column, in t's coordinates
  const rank = 2 * b * PANELS_PER_UPDATE;
  let lf = new Float64Array(m0 * rank); // L, zero above each update's first row
  let rf = new Float64Array(m0 * rank);
  let used = 0; // pending panels
  const keepLower = (src: Float64Array, cols: number, rows: number, at0: number) => {
    for (let i = 0; i < rows; i++)
      for (let j = 0; j <= Math.min(i, cols - 1); j++) {
        if (i - j > b) continue;
        band.data[band.at(at0 + i, at0 + j)] = src[i * cols + j]!;
      }
  };
  /** t's columns c0..c0+nc−1 from row c0 down, with the pending updates applied. */
  const current = async (c0: number, nc: number): Promise<Float64Array> => {
    const cur = block(t, m0, c0, c0, m0 - c0, nc).data;
    if (used === 0) return cur;
    return k.gemm(
      rowsOf(lf, rank, c0, m0),
      [m0 - c0, rank],
      rowsOf(rf, rank, c0, c0 + nc),
      [nc, rank],
      cur,
      {
        transB: true,
        alpha: -1,
        beta: 1,
      },
    );
  };
  while (m0 - o > b + 1) {
    const m = m0 - o - b;
    const cols = await current(o, b); // (m + b) x b: the diagonal block, then the panel
    keepLower(cols, b, b, off + o); // the diagonal block is final
    const panel = cols.slice(b * b);
    const { v, tau, nr } = panelQr(panel, m, b);
    // R (upper trapezoidal) lands at rows o+b.., columns o..o+b-1.
    for (let i = 0; i < nr; i++)
      for (let j = i; j < b; j++)
        band.data[band.at(off + o + b + i, off + o + j)] = panel[i * b + j]!;
    const gram = await k.gemm(v, [m, nr], v, [m, nr], undefined, { transA: true });
    const tt = compactWy(gram, tau, nr);
    // Y = A22 V for the current trailing block A22: t's rows o+b.. (a view, not copied)
    // times V padded with zeros above, minus L (Rᵀ V) for the pending updates.
    const vpad = new Float64Array(m0 * nr);
    vpad.set(v, (o + b) * nr);
    let y = await k.gemm(rowsOf(t, m0, o + b, m0), [m, m0], vpad, [m0, nr]);
    if (used > 0) {
      const rtv = await k.gemm(rowsOf(rf, rank, o + b, m0), [m, rank], v, [m, nr], undefined, {
        transA: true,
      });
      y = await k.gemm(rowsOf(lf, rank, o + b, m0), [m, rank], rtv, [rank, nr], y, {
        alpha: -1,
        beta: 1,
      });
    }
    // X = Y T, C = Tᵀ (Vᵀ X), W = X − ½ V C.
    const x = await k.gemm(y, [m, nr], tt, [nr, nr]);
    const vtx = await k.gemm(v, [m, nr], x, [m, nr], undefined, { transA: true });
    const c = new Float64Array(nr * nr);
    for (let i = 0; i < nr; i++)
      for (let j = 0; j < nr; j++) {
        let s = 0;
        for (let l = 0; l <= i; l++) s += tt[l * nr + i]! * vtx[l * nr + j]!;
        c[i * nr + j] = s;
      }
    const w = await k.gemm(v, [m, nr], c, [nr, nr], x, { alpha: -0.5, beta: 1 });
    // Append (V, W) to L = [… V W] and R = [… W V], rows o+b.. of t.
    const c0 = 2 * b * used;
    for (let r = 0; r < m; r++) {
      const row = (o + b + r) * rank + c0;
      const src = r * nr;
      for (let j = 0; j < nr; j++) {
        const vj = v[src + j]!;
        const wj = w[src + j]!;
        lf[row + j] = vj;
        lf[row + b + j] = wj;
        rf[row + j] = wj;
        rf[row + b + j] = vj;
      }
    }
    used++;
    o += b;
    if (used === PANELS_PER_UPDATE || m0 - o <= b + 1) {
      // The trailing matrix from row/column o on, every pending update applied.
      const mt = m0 - o;
      const l = rowsOf(lf, rank, o, m0);
      const r = rowsOf(rf, rank, o, m0);
      t = await symmetricUpdate(block(t, m0, o, o, mt, mt).data, mt, l, r, rank, k);
      off += o;
      m0 = mt;
      o = 0;
      used = 0;
      lf = new Float64Array(m0 * rank);
      rf = new Float64Array(m0 * rank);
    }
  }
  const rest = m0 - o;
  keepLower((await current(o, rest)).subarray(0, rest * rest), rest, rest, off + o);
  return band;
}

/**
 * Eigenvalues (ascending) of a symmetric matrix, its O(n³) reduction run as float64 Gemm
 * (see the file comment); the same values as {@link symmetricEigenvalues} up to rounding
 * (both are backward stable: errors within a small multiple of n·eps·‖A‖).
 * @param a - symmetric matrix, n x n (its symmetric part is used)
 * @param n - size
 * @param k - the kernels
 * @example const values = await symmetricEigenvaluesCompiled(cov, 3072, kernels);
 */
export async function symmetricEigenvaluesCompiled(
  a: NumArray,
  n: number,
  k: DenseKernels,
): Promise<Float64Array> {
  if (a.length !== n * n)
    throw new RangeError(`symmetricEigenvalues: expected ${n * n} values, got ${a.length}`);
  if (n <= k.base) return symmetricEigenvalues(a, n);
  const b = Math.min(k.band, n - 1);
  const band = await reduceToBand(a, n, b, k);
  return bandEigenvalues(band, b);
}

/** Internal steps, exported for the tests only. */
export const internals = { reduceToBand, panelQr };
