// The package's public entry: a user's whole workflow (build a model, plan the
// conversion, fit the closed-form denoisers on its own features, fuse, verify) through
// `src/index.ts` alone, and the built entry (`denoiserep`, from dist/) exporting the same
// names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import * as api from '../src/index.js';

describe('public API', () => {
  test('build → plan → closed-form fit → fuse → verify, from the package entry alone', async () => {
    const b = new api.GraphBuilder({ seed: 3 });
    const x = b.input('input', 'float32', ['N', 6]);
    const w1 = b.scope('fc1', () => b.param('weight', [8, 6], { kind: 'uniform', bound: 0.5 }));
    const b1 = b.scope('fc1', () => b.param('bias', [8], { kind: 'uniform', bound: 0.5 }));
    const h = b.relu(b.gemm(x, w1, b1, { transB: 1 }));
    const w2 = b.scope('fc2', () => b.param('weight', [3, 8], { kind: 'uniform', bound: 0.5 }));
    b.output(b.gemm(h, w2, null, { transB: 1 }), 'y');
    const { model } = b.build();

    const plan = api.planConversion(model.graph, { filter: 'all' });
    assert.deepEqual(
      plan.layers.map((p) => [p.layer.name, p.t]),
      [
        ['fc1', 2],
        ['fc2', 1],
      ],
    );
    // Features with a low-variance direction, so the MSE-optimal denoiser is not ~0.
    const rng = new api.Rng(5);
    const n = 512;
    const data = rng.fillNormal(new Float32Array(n * 6));
    for (let i = 0; i < n; i++) data[i * 6 + 5]! *= 0.01;
    const stats = await api.collectMoments(model, plan, [{ input: api.float32([n, 6], data) }], {
      session: { threads: 1 },
    });
    const { values } = await api.fitClosedForm(plan, stats, { threads: 1 });
    const fused = api.fuseModel(model, plan, values);
    const report = await api.verifyFusion({
      original: model,
      fused,
      plan,
      denoisers: values,
      inputs: { input: api.float32([16, 6], data.subarray(0, 96)) },
      latencyBatches: [],
      threads: 1,
    });
    assert.ok(report.ok, report.failures.join('; '));
    assert.deepEqual(report.topology.differences, []);
    // Fusion changed the weights (the low-variance input direction is shrunk).
    const before = model.graph.initializers.get('fc1.weight')!.data as Float32Array;
    const after = fused.graph.initializers.get('fc1.weight')!.data as Float32Array;
    assert.ok(api.relativeWeightChange(before, after) > 1e-5);
  });

  test('the built entry exports what src/index.ts exports', (t) => {
    if (!existsSync('dist/index.js')) {
      t.skip('dist/ not built (npm ci builds it)');
      return;
    }
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('denoiserep'); console.log(JSON.stringify(Object.keys(m).sort()));",
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), Object.keys(api).sort());
  });
});
