// The statistics pass: ONNX Runtime's float64 count, sum and Gram matrix of each layer's
// denoiser input, added run by run to totals fed in and written back, equal the plain
// JavaScript sums over all rows, whatever the batching,
// however each batch is split into runs, and with the Gram matrix taken in blocks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MomentAccumulator } from '../../src/denoise/closed-form.js';
import { collectMoments, gramEntries, momentModel } from '../../src/denoise/fit.js';
import { planConversion } from '../../src/denoise/plan.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/rng.js';

/** x [N, 5] → fc1 (5 → 4) → relu → fc2 (4 → 3). */
function mlp() {
  const b = new GraphBuilder({ seed: 1 });
  const x = b.input('input', 'float32', ['N', 5]);
  const h = b.scope('fc1', () =>
    b.gemm(
      x,
      b.param('weight', [4, 5], { kind: 'normal', std: 1 }),
      b.param('bias', [4], { kind: 'normal', std: 1 }),
      { transB: 1 },
    ),
  );
  const r = b.relu(h);
  b.output(
    b.scope('fc2', () =>
      b.gemm(
        r,
        b.param('weight', [3, 4], { kind: 'normal', std: 1 }),
        b.param('bias', [3], { kind: 'zeros' }),
        { transB: 1 },
      ),
    ),
    'y',
  );
  return b.build().model;
}

describe('collectMoments', () => {
  test('one batch or several: the sums of all rows, to float64 rounding', async () => {
    const model = mlp();
    const plan = planConversion(model.graph);
    const n = 37;
    const x = new Rng(4).fillNormal(new Float32Array(n * 5));
    // The reference for fc1 (its input is x itself) in plain JavaScript.
    const ref = new MomentAccumulator(5).add(Float64Array.from(x), n);
    const feeds = (sizes: number[]) => {
      let at = 0;
      return sizes.map((s) => {
        const f = { input: float32([s, 5], x.slice(at * 5, (at + s) * 5)) };
        at += s;
        return f;
      });
    };
    const seen: number[] = [];
    const one = await collectMoments(model, plan, feeds([n]), { session: { threads: 1 } });
    const three = await collectMoments(model, plan, feeds([16, 16, 5]), {
      session: { threads: 1 },
      onBatch: (k) => seen.push(k),
    });
    assert.deepEqual(seen, [16, 16, 5]);
    // Runs of one image each (a budget below one image's layer inputs), and the default
    // (the first image alone, then the rest of the batch in one run).
    const single = await collectMoments(model, plan, feeds([20, 17]), {
      session: { threads: 1 },
      chunkBytes: 1,
    });
    // Gram matrices in blocks (every layer at least 3 wide split in two halves: fc1's 5
    // features as 2 + 3, fc2's 4 as 2 + 2), over several runs.
    const split = await collectMoments(model, plan, feeds([16, 21]), {
      session: { threads: 1 },
      splitDim: 3,
    });
    for (const stats of [one, three, single, split]) {
      const fc1 = stats.get('fc1')!;
      assert.equal(fc1.count, n);
      for (let i = 0; i < 5; i++) assert.ok(Math.abs(fc1.sum[i]! - ref.sum[i]!) < 1e-12);
      for (let i = 0; i < 25; i++) assert.ok(Math.abs(fc1.gram[i]! - ref.gram[i]!) < 1e-11);
    }
    // fc2's input (relu of fc1): both batchings agree, and its Gram has ReLU's zeros' mark
    // (entries are sums of products of non-negative values).
    const a = one.get('fc2')!;
    for (const b of [three.get('fc2')!, single.get('fc2')!, split.get('fc2')!]) {
      assert.equal(b.count, n);
      for (let i = 0; i < 16; i++) {
        assert.ok(Math.abs(a.gram[i]! - b.gram[i]!) <= 1e-12 * Math.max(1, Math.abs(a.gram[i]!)));
        assert.ok(a.gram[i]! >= 0);
      }
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(a.sum[i]! - b.sum[i]!) <= 1e-12);
    }
  });

  test('gramEntries: dim² below the split width, the upper block triangle from it', () => {
    assert.equal(gramEntries(768), 768 * 768);
    // 3,072 in halves of 1,536: blocks 00, 01, 11.
    assert.equal(gramEntries(3072), 3 * 1536 * 1536);
    // 5 as 2 + 3: 4 + 6 + 9.
    assert.equal(gramEntries(5, 3), 19);
  });

  test('the moment model splits only layers at least splitDim wide', () => {
    const model = mlp();
    const plan = planConversion(model.graph);
    const outputs = (splitDim: number) =>
      momentModel(model, plan, splitDim)
        .graph.outputs.map((o) => o.name)
        .filter((o) => o.startsWith('moments::gram::'));
    assert.deepEqual(outputs(1024), ['moments::gram::fc1::00', 'moments::gram::fc2::00']);
    assert.deepEqual(outputs(5), [
      'moments::gram::fc1::00',
      'moments::gram::fc1::01',
      'moments::gram::fc1::11',
      'moments::gram::fc2::00',
    ]);
  });
});
