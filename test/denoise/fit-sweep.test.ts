// The closed-form fit at many noise levels from one eigendecomposition per layer equals
// the direct fit at each level, on real presets (a ViT with Linear layers, a ResNet with
// bias-free convolutions, whose denoisers have no affine terms).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Tensor } from '../../src/onnx/tensor.js';
import { collectMoments, fitClosedForm, fitClosedFormSweep } from '../../src/denoise/fit.js';
import { fuseModel, fusionProducts, fusionWeight } from '../../src/denoise/fuse.js';
import { DenseKernels } from '../../src/denoise/linalg-compiled.js';
import { planConversion } from '../../src/denoise/plan.js';
import { getPreset } from '../../src/models/registry.js';
import { INPUT_NAME } from '../../src/models/types.js';
import { initialWeights, modelWithWeights } from '../../src/models/weights.js';
import { float32 } from '../../src/onnx/tensor.js';
import { DataError, UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { relErr } from './helpers.js';

const scales = [1, 10, 100];

describe('fitClosedFormSweep', () => {
  for (const preset of ['vit-micro', 'resnet-micro']) {
    test(`${preset}: every level equals fitClosedForm on that level's plan`, async () => {
      const def = getPreset(preset);
      const model = modelWithWeights(def, initialWeights(def, 1));
      const plans = scales.map((k) => planConversion(model.graph, { schedule: { noiseScale: k } }));
      const [c, h, w] = def.inputShape;
      const n = 64;
      const x = new Rng(2).fillUniform(new Float32Array(n * c * h * w), 0, 1);
      const stats = await collectMoments(
        model,
        plans[0]!,
        [{ [INPUT_NAME]: float32([n, c, h, w], x) }],
        { session: { threads: 1 } },
      );
      const sweep = fitClosedFormSweep(plans, stats);
      assert.equal(sweep.values.length, scales.length);
      assert.equal(sweep.spectra.size, plans[0]!.layers.length);
      let prevChange = 0;
      const directs: Map<string, Tensor>[] = [];
      for (const plan of plans)
        directs.push((await fitClosedForm(plan, stats, { threads: 1 })).values);
      plans.forEach((plan, i) => {
        const direct = directs[i]!;
        assert.deepEqual([...sweep.values[i]!.keys()], [...direct.keys()]);
        for (const [name, t] of direct) {
          const got = sweep.values[i]!.get(name)!.data as Float32Array;
          // The time embedding is zero in both (absorbed in the bias).
          if (t.data.every((v) => v === 0))
            assert.ok(
              got.every((v) => v === 0),
              name,
            );
          else {
            const e = relErr(got, t.data as Float32Array);
            assert.ok(e < 1e-5, `${preset} k=${scales[i]} ${name}: ${e}`);
          }
        }
        // More noise, larger denoising steps: the fused weights move further.
        const fused = fuseModel(model, plan, sweep.values[i]!);
        let num = 0;
        let den = 0;
        for (const p of plan.layers) {
          const a = model.graph.initializers.get(p.layer.weight)!.data as Float32Array;
          const b = fused.graph.initializers.get(p.layer.weight)!.data as Float32Array;
          for (let j = 0; j < a.length; j++) {
            num += (b[j]! - a[j]!) ** 2;
            den += a[j]! ** 2;
          }
        }
        const change = Math.sqrt(num / den);
        assert.ok(change > prevChange, `k=${scales[i]}: change ${change} after ${prevChange}`);
        prevChange = change;
      });
      if (preset === 'resnet-micro') assert.ok(plans[0]!.layers.some((p) => !p.affine));
    });
  }

  test('plans over different layers are refused', () => {
    const def = getPreset('vit-micro');
    const model = modelWithWeights(def, initialWeights(def, 1));
    const a = planConversion(model.graph, { filter: 'mlp' });
    const b = planConversion(model.graph, { filter: 'all' });
    assert.throws(() => fitClosedFormSweep([a, b], new Map()), UsageError);
    assert.throws(() => fitClosedFormSweep([], new Map()), UsageError);
  });
});

describe('fitClosedForm with layers fitted on worker threads', () => {
  const def = getPreset('vit-micro');
  const model = modelWithWeights(def, initialWeights(def, 1));
  const plan = planConversion(model.graph, { filter: 'all' });
  const [c, h, w] = def.inputShape;
  const n = 32;
  const feeds = () => [
    {
      [INPUT_NAME]: float32(
        [n, c, h, w],
        new Rng(4).fillUniform(new Float32Array(n * c * h * w), 0, 1),
      ),
    },
  ];

  test('gives each layer what one layer at a time on this thread gives, in plan order', async () => {
    const stats = await collectMoments(model, plan, feeds(), { session: { threads: 1 } });
    assert.ok(plan.layers.length >= 3);
    // Two workers of one thread each.
    const all = await fitClosedForm(plan, stats, { threads: 2, workers: 2 });
    assert.deepEqual(
      all.report.map((r) => r.layer),
      plan.layers.map((p) => p.layer.name),
    );
    // One plan per layer, on this thread: nothing else in flight.
    for (const p of plan.layers) {
      const one = await fitClosedForm({ ...plan, layers: [p] }, stats, {
        threads: 1,
        workers: 0,
      });
      for (const [name, t] of one.values)
        assert.deepEqual(all.values.get(name)!.data, t.data, name);
      assert.deepEqual(all.spectra.get(p.layer.name), one.spectra.get(p.layer.name));
    }
  });

  test('with weightOf, the fusion products fusionProducts gives after the fit', async () => {
    const stats = await collectMoments(model, plan, feeds(), { session: { threads: 1 } });
    const r = await fitClosedForm(plan, stats, {
      threads: 2,
      workers: 2,
      weightOf: (p) => fusionWeight(model, p),
    });
    const k = new DenseKernels({ threads: 1 });
    try {
      const want = await fusionProducts(model, plan, r.values, k);
      assert.ok(want.size >= 3);
      // Both kinds: W·Wd of the Linears, Wd·W of the patch embedding conv.
      const sides = new Set(plan.layers.filter((p) => want.has(p.layer.name)).map((p) => p.side));
      assert.deepEqual([...sides].sort(), ['input', 'output']);
      assert.deepEqual([...r.products!.keys()].sort(), [...want.keys()].sort());
      for (const [name, w] of want) assert.deepEqual(r.products!.get(name), w, name);
    } finally {
      await k.release();
    }
    // Without weightOf there are none.
    assert.equal(
      (await fitClosedForm(plan, stats, { threads: 1, workers: 0 })).products,
      undefined,
    );
  });

  test('a layer that fails rejects with its name, and the others settle first', async () => {
    const stats = await collectMoments(model, plan, feeds(), { session: { threads: 1 } });
    const bad = plan.layers[1]!.layer.name;
    stats.get(bad)!.gram[0] = Number.NaN;
    for (const workers of [0, 2]) {
      await assert.rejects(
        fitClosedForm(plan, stats, { threads: 2, workers }),
        (e: unknown) => e instanceof DataError && e.message.includes(`'${bad}'`),
      );
    }
    await assert.rejects(
      fitClosedForm(plan, stats, { workers: -1 }),
      (e: unknown) => e instanceof UsageError && e.message.includes('workers'),
    );
  });
});
