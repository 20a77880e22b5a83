// Dense float64 linear algebra of the closed form, JavaScript reference against the
// compiled path (ONNX Runtime float64 Gemm), on random covariance-like SPD matrices.
// Prints one JSON object with --json: per size, seconds for
//   inverse      (s1² S + s2² I)⁻¹: JS Cholesky + solve with I, vs recursive Cholesky → XᵀX
//   eigenvalues  JS Householder + QL, vs band reduction (Gemm) + bulge chasing + QL
//   product      W·Wd for a fc2-shaped weight (768 x n times n x n): the fusion's product
//   gemm         one n x n x n product, and its GFLOP/s (the kernel's speed on this machine)
// (seconds of wall time, or with --cpu of the process's CPU time, all threads)
// and the largest relative differences between the two paths. JavaScript runs only up to
// --js-max (default 1536; its time grows as n³).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  DenseKernels,
  matmulCompiled,
  spdInverseCompiled,
  symmetricEigenvaluesCompiled,
} from '../src/denoise/linalg-compiled.js';
import { matmul, symmetricEigenvalues } from '../src/denoise/linalg.js';
import { Rng } from '../src/util/rng.js';
// The plain JavaScript inverse (Cholesky, solve with I) lives with the tests' references.
import { spdInverse } from '../test/denoise/linalg-reference.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '768,1536,3072' },
    'js-max': { type: 'string', default: '1536' },
    threads: { type: 'string' },
    band: { type: 'string' },
    cpu: { type: 'boolean', default: false },
  },
});
const sizes = values.sizes.split(',').map(Number);
const jsMax = Number(values['js-max']);
const kernels = new DenseKernels({
  threads: values.threads ? Number(values.threads) : undefined,
  band: values.band ? Number(values.band) : undefined,
});
const rng = new Rng(0);
const sec = (ms: number) => Number((ms / 1000).toFixed(2));
// Wall time, unless --cpu: CPU time of the process (all threads), steadier on a shared machine.
const time = async <T>(f: () => T | Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await f();
  const c = process.cpuUsage(c0);
  return [r, values.cpu ? (c.user + c.system) / 1000 : performance.now() - t0];
};

/** S = X Xᵀ / m with m = 2n samples of decaying scale, plus the noise level s2² I. */
async function covarianceLike(n: number): Promise<Float64Array> {
  const m = 2 * n;
  const x = new Float64Array(n * m);
  rng.fillNormal(x);
  for (let i = 0; i < n; i++) {
    const scale = 2 ** (-i / (n / 8));
    for (let r = 0; r < m; r++) x[i * m + r]! *= scale;
  }
  const s = await kernels.gemm(x, [n, m], x, [n, m], undefined, { transB: true, alpha: 1 / m });
  for (let i = 0; i < n; i++) s[i * n + i]! += 1e-3;
  return s;
}

const rows: Record<string, unknown>[] = [];
for (const n of sizes) {
  const a = await covarianceLike(n);
  const row: Record<string, unknown> = { n };
  const [inv, invMs] = await time(() => spdInverseCompiled(a, n, kernels));
  const [ev, evMs] = await time(() => symmetricEigenvaluesCompiled(a, n, kernels));
  const w = rng.fillNormal(new Float64Array(768 * n));
  const [prod, prodMs] = await time(() => matmulCompiled(w, a, 768, n, n, kernels));
  const [, gemmMs] = await time(() => kernels.gemm(a, [n, n], a, [n, n]));
  row.compiled = { inverseS: sec(invMs), eigenvaluesS: sec(evMs), productS: sec(prodMs) };
  row.gemmGflops = Number(((2 * n ** 3) / gemmMs / 1e6).toFixed(1));
  if (n <= jsMax) {
    const [ref, refMs] = await time(() => spdInverse(a, n));
    const [evRef, evRefMs] = await time(() => symmetricEigenvalues(a, n));
    const [prodRef, prodRefMs] = await time(() => matmul(w, a, 768, n, n));
    row.javascript = { inverseS: sec(refMs), eigenvaluesS: sec(evRefMs), productS: sec(prodRefMs) };
    let num = 0;
    let den = 0;
    if (inv.ok && ref.ok)
      for (let i = 0; i < n * n; i++) {
        num += (inv.x[i]! - ref.x[i]!) ** 2;
        den += ref.x[i]! ** 2;
      }
    let evErr = 0;
    for (let i = 0; i < n; i++) evErr = Math.max(evErr, Math.abs(ev[i]! - evRef[i]!));
    let prodErr = 0;
    let prodMax = 0;
    for (let i = 0; i < prod.length; i++) {
      prodErr = Math.max(prodErr, Math.abs(prod[i]! - prodRef[i]!));
      prodMax = Math.max(prodMax, Math.abs(prodRef[i]!));
    }
    row.agreement = {
      inverseRelFrobenius: Number(Math.sqrt(num / den).toExponential(2)),
      eigenvaluesMaxAbsOverNorm: Number((evErr / evRef[n - 1]!).toExponential(2)),
      productMaxRel: Number((prodErr / prodMax).toExponential(2)),
    };
  }
  rows.push(row);
}
await kernels.release();
const out = {
  threads: kernels.threads,
  band: kernels.band,
  clock: values.cpu ? 'cpu' : 'wall',
  sizes: rows,
};
if (values.json) console.log(JSON.stringify(out));
else console.dir(out, { depth: 4 });
