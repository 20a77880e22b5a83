import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuseModel } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { verifyFusion } from '../../src/denoise/verify.js';
import { planLatency } from '../../src/eval/latency.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';

describe('planLatency', () => {
  const cost = (p: { rounds: number; block: number; warmup: number }, s: number, r: number) =>
    p.rounds * 2 * (s + (p.warmup + p.block) * r);

  test('a fast model gets the requested runs in about 20 rounds', () => {
    const p = planLatency({ sessionMs: 20, runMs: 1 }, { runs: 300, budgetMs: 30_000, models: 2 });
    assert.deepEqual(p && [p.rounds, p.block, p.warmup], [20, 15, 3]);
    assert.equal(p!.expectedMs, cost(p!, 20, 1));
  });

  test('a slower model keeps its block and gets fewer rounds, at least 3', () => {
    // 20 rounds of 5 runs would take 20·2·(500 + 8·200) = 84 s.
    const p = planLatency(
      { sessionMs: 500, runMs: 200 },
      { runs: 100, budgetMs: 30_000, models: 2 },
    )!;
    assert.equal(p.block, 5);
    assert.equal(p.warmup, 3);
    assert.equal(p.rounds, 7); // floor(30 000 / 4 200)
    assert.ok(p.expectedMs <= 30_000);
  });

  test('a model as slow as ViT-B at batch 64 on two cores gets 3 rounds of fewer runs', () => {
    const probe = { sessionMs: 1500, runMs: 1200 };
    const p = planLatency(probe, { runs: 30, budgetMs: 30_000, models: 2 })!;
    assert.equal(p.rounds, 3);
    assert.equal(p.warmup, 1);
    assert.equal(p.block, 1); // floor((30 000 / 6 − 1500) / 1200) − 1 warm-up run
    assert.ok(p.expectedMs <= 30_000);
  });

  test('falls back to one round, then to nothing when one run does not fit', () => {
    const one = planLatency(
      { sessionMs: 1000, runMs: 4000 },
      { runs: 30, budgetMs: 30_000, models: 2 },
    )!;
    assert.deepEqual([one.rounds, one.warmup], [1, 1]);
    assert.ok(one.expectedMs <= 30_000 && one.block >= 1);
    assert.equal(
      planLatency({ sessionMs: 1000, runMs: 20_000 }, { runs: 30, budgetMs: 30_000, models: 2 }),
      null,
    );
  });
});

describe('verifyFusion latency budget', () => {
  test('a budget too small for one run skips the measurement and says why', async () => {
    const b = new GraphBuilder({ seed: 1 });
    const x = b.input('input', 'float32', ['N', 4]);
    const w = b.scope('fc', () => b.param('weight', [3, 4], { kind: 'uniform', bound: 0.5 }));
    const bias = b.scope('fc', () => b.param('bias', [3], { kind: 'zeros' }));
    b.output(b.gemm(x, w, bias, { transB: 1 }), 'y');
    const { model } = b.build();
    const plan = planConversion(model.graph, { filter: 'all' });
    const values = initDenoisers(plan, 0);
    const fused = fuseModel(model, plan, values);
    const inputs = { input: float32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]) };
    const report = await verifyFusion({
      original: model,
      fused,
      plan,
      denoisers: values,
      inputs,
      threads: 1,
      latencyBatches: [1, 8],
      latencyBudgetMs: 0.001,
      makeInputs: (n) => ({ input: float32([n, 4], new Float32Array(4 * n).fill(0.5)) }),
    });
    assert.ok(report.ok, report.failures.join('; '));
    assert.deepEqual(report.latency, []);
    assert.deepEqual(
      report.latencySkipped.map((s) => s.batch),
      [1, 8],
    );
    assert.match(report.latencySkipped[0]!.reason, /latency budget/);
  });
});
