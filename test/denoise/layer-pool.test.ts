import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fitDenoiserCompiled, MomentAccumulator } from '../../src/denoise/closed-form.js';
import { LayerPool } from '../../src/denoise/layer-pool.js';
import { DenseKernels, matmulCompiled } from '../../src/denoise/linalg-compiled.js';
import { DataError, UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

/** Moments of `rows` random vectors of dimension d with a few strong directions. */
function moments(d: number, rows: number, seed: number): MomentAccumulator {
  const rng = new Rng(seed);
  const x = new Float64Array(rows * d);
  rng.fillNormal(x);
  for (let r = 0; r < rows; r++) for (let i = 0; i < 4; i++) x[r * d + i]! *= 10;
  return new MomentAccumulator(d).add(x);
}

describe('LayerPool', () => {
  // Above the kernels' JavaScript cut-off, so the workers' products run in ONNX Runtime.
  const dims = [200, 150, 260];
  const coeffs = { s1: 0.9, s2: 0.3 };
  const here = new DenseKernels({ threads: 1 });
  after(() => here.release());

  test('workers give bit for bit what the calling thread gives, several layers queued', async () => {
    const stats = dims.map((d, i) => moments(d, 2 * d, i));
    const pool = new LayerPool({ workers: 2, threads: 1, fallback: here });
    try {
      const got = await Promise.all(
        stats.map(async (s, i) => (await pool.fit(s, coeffs, { name: `l${i}` })).fit),
      );
      for (const [i, s] of stats.entries()) {
        const want = await fitDenoiserCompiled(s, coeffs, here, { name: `l${i}` });
        assert.deepEqual(got[i]!.Wd, want.Wd);
        assert.deepEqual(got[i]!.bd, want.bd);
        assert.deepEqual(got[i]!.covarianceEigenvalues, want.covarianceEigenvalues);
        assert.equal(got[i]!.jitter, want.jitter);
        // The statistics were copied to the worker, not taken.
        assert.equal(s.gram.length, dims[i]! ** 2);
      }
    } finally {
      await pool.release();
    }
  });

  test('with the weight, the fusion product (W·Wd or Wd·W) of the float32 Wd, as after the fit', async () => {
    const d = 200;
    const rows = 70;
    const s = moments(d, 2 * d, 3);
    const weight = new Rng(9).fillNormal(new Float64Array(rows * d));
    const pool = new LayerPool({ workers: 1, threads: 1, fallback: here });
    try {
      const input = await pool.fit(s, coeffs, { weight: { data: weight, side: 'input' } });
      const wd = Float64Array.from(Float32Array.from(input.fit.Wd));
      assert.deepEqual(input.product, await matmulCompiled(weight, wd, rows, d, d, here));
      // An output-side conv's weight is d x cols, and its product Wd·W.
      const output = await pool.fit(s, coeffs, { weight: { data: weight, side: 'output' } });
      assert.deepEqual(output.product, await matmulCompiled(wd, weight, d, d, rows, here));
      // A weight of the wrong size is refused, naming the layer.
      await assert.rejects(
        pool.fit(s, coeffs, {
          name: "layer 'x'",
          weight: { data: weight.subarray(1), side: 'input' },
        }),
        (e: unknown) => e instanceof DataError && e.message.includes("layer 'x'"),
      );
    } finally {
      await pool.release();
    }
  });

  test("a fit's error comes back as its own class, naming the layer", async () => {
    const s = moments(200, 400, 7);
    s.gram[5] = Number.NaN;
    const pool = new LayerPool({ workers: 1, threads: 1, fallback: here });
    try {
      await assert.rejects(
        pool.fit(s, coeffs, { name: "layer 'blocks.0.fc2'" }),
        (e: unknown) => e instanceof DataError && e.message.includes("'blocks.0.fc2'"),
      );
      // The worker is still there for the next layer.
      const ok = await pool.fit(moments(200, 400, 8), coeffs);
      assert.equal(ok.fit.Wd.length, 200 * 200);
    } finally {
      await pool.release();
    }
  });

  test('a worker that dies: its layer and the later ones are fitted on this thread', async () => {
    const stats = dims.map((d, i) => moments(d, 2 * d, 10 + i));
    const pool = new LayerPool({ workers: 1, threads: 1, fallback: here });
    try {
      const pending = stats.map((s) => pool.fit(s, coeffs));
      // Kill the worker while it holds the first layer.
      const slots = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] })
        .slots;
      await slots[0]!.worker.terminate();
      const got = await Promise.all(pending);
      for (const [i, s] of stats.entries()) {
        const want = await fitDenoiserCompiled(s, coeffs, here);
        assert.deepEqual(got[i]!.fit.Wd, want.Wd);
      }
    } finally {
      await pool.release();
    }
  });

  test('bad sizes are usage errors', () => {
    assert.throws(() => new LayerPool({ workers: 0, threads: 1, fallback: here }), UsageError);
    assert.throws(() => new LayerPool({ workers: 1, threads: 1.5, fallback: here }), UsageError);
  });
});
