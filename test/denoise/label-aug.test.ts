// Label-augmented DenoiseRep: phase A trains only the denoisers, phase B only the
// backbone (through the fused weights); the result fuses exactly; its control is
// compute-matched.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageDataset } from '../../src/data/dataset.js';
import { fuseModel } from '../../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../../src/denoise/plan.js';
import { trainLabelAugmented } from '../../src/denoise/train.js';
import { verifyFusion } from '../../src/denoise/verify.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { float32 } from '../../src/onnx/tensor.js';
import { evalModelWith } from '../../src/train/loop.js';
import { ParamStore } from '../../src/models/params.js';
import type { StepInfo } from '../../src/train/run.js';
import { Rng } from '../../src/util/rng.js';

function data(n: number): ImageDataset {
  const rng = new Rng(3);
  const images = rng.fillUniform(new Float32Array(n * 64), 0, 1);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  for (let i = 0; i < n; i++)
    for (let p = 0; p < 16; p++) images[i * 64 + labels[i]! * 16 + p]! += 1;
  return {
    name: 'synthetic',
    size: n,
    channels: 1,
    height: 8,
    width: 8,
    numClasses: 3,
    images,
    labels,
  };
}

describe('label-augmented DenoiseRep', () => {
  test('phase A moves only denoisers, phase B only the backbone; the result fuses exactly', async () => {
    const def = getPreset('vit-micro', { numClasses: 3 });
    const built = buildBackbone(def, 'eval', 0).b.build();
    const backbone = ParamStore.fromInitializers(built.model.graph.initializers, [
      ...built.params,
      ...built.buffers,
    ]);
    const plan = planConversion(built.model.graph, { filter: 'mlp' });
    const init = initDenoisers(plan, 1);
    const before = backbone.clone();
    const seen: string[] = [];
    const snapshots: { backbone: ParamStore }[] = [];
    const cfg = {
      epochs: 2,
      phaseEpochs: 1,
      denoiseWeight: 0.01,
      batchSize: 16,
      lr: 1e-2,
      backboneLr: 1e-3,
      seed: 0,
      threads: 1,
    };
    const res = await trainLabelAugmented({
      def,
      backbone,
      plan,
      init,
      data: data(48),
      filter: 'mlp',
      config: cfg,
      log: (r) => {
        if (r.kind === 'epoch') {
          seen.push(String(r.phase));
          snapshots.push({ backbone: backbone.clone() });
        }
      },
    });
    assert.deepEqual(seen, ['denoisers', 'backbone']);
    // After phase A the backbone is untouched; after phase B it has moved.
    for (const n of built.params)
      assert.deepEqual(snapshots[0]!.backbone.get(n).data, before.get(n).data, n);
    assert.ok(
      built.params.some((n) =>
        res.backbone.get(n).data.some((v, i) => v !== before.get(n).data[i]),
      ),
    );
    // The denoisers moved in phase A.
    const w = plan.layers[0]!.names.weight;
    assert.ok(res.values.get(w)!.data.some((v, i) => v !== init.get(w)!.data[i]));
    // The trained model fuses exactly.
    const base = evalModelWith(def, res.backbone);
    const fused = fuseModel(base, plan, res.values);
    const x = float32([4, 1, 8, 8], new Rng(5).fillUniform(new Float32Array(256), 0, 1));
    const rep = await verifyFusion({
      original: base,
      fused,
      plan,
      denoisers: res.values,
      inputs: { input: x },
      tolerance: 1e-5,
      threads: 1,
    });
    assert.ok(rep.ok, rep.failures.join('; '));
  });
});

describe('label-augmented DenoiseRep for ReID', () => {
  test('ID cross-entropy + triplet on PK batches through the fused weights, with a BNNeck', async () => {
    const def = getPreset('vit-micro', { numClasses: 3, bnneck: true });
    const built = buildBackbone(def, 'eval', 0).b.build();
    const plan = planConversion(built.model.graph, { filter: 'mlp' });
    const train = data(48);
    const run = async (tripletMargin: number) => {
      const backbone = ParamStore.fromInitializers(built.model.graph.initializers, [
        ...built.params,
        ...built.buffers,
      ]);
      const steps: StepInfo[] = [];
      const res = await trainLabelAugmented({
        def,
        backbone,
        plan,
        init: initDenoisers(plan, 2),
        data: train,
        filter: 'mlp',
        config: {
          epochs: 2,
          phaseEpochs: 1,
          denoiseWeight: 0.1,
          batchSize: 12,
          pkP: 3,
          task: 'reid',
          tripletMargin,
          lr: 1e-2,
          backboneLr: 1e-3,
          seed: 1,
          threads: 1,
        },
        onStep: (s) => steps.push(s),
      });
      return { res, steps };
    };
    const { res, steps } = await run(20);
    // Phase B runs on PK batches: 3 identities x 4 images each, identity-major, and feeds
    // the same-identity mask of the triplet loss; phase A on plain shuffled batches.
    const b = steps.filter((s) => s.phase === 'backbone');
    assert.equal(b.length, 4); // 16 images per identity: 4 chunks of 4, 3 per batch
    for (const s of b) {
      const ids = [...s.batch].map((i) => train.labels[i]!);
      assert.deepEqual(new Set(ids).size, 3);
      for (let p = 0; p < 3; p++)
        assert.ok(ids.slice(4 * p, 4 * p + 4).every((y) => y === ids[4 * p]));
      const mask = s.feeds.same_id!.data as Float32Array;
      assert.equal(
        mask.reduce((a, v) => a + v, 0),
        3 * 16,
      );
    }
    assert.ok(steps.filter((s) => s.phase === 'denoisers').every((s) => s.batch.length === 12));
    // The backbone loss holds the batch-hard triplet term mean(relu(d_ap − d_an + margin)).
    // With margins far above any feature distance every hinge is active, so one more unit of
    // margin adds exactly 1 to the first backbone step's loss (same weights, same PK batch,
    // same denoisers: phase A does not see the margin).
    const more = (await run(21)).steps.filter((s) => s.phase === 'backbone');
    const diff = more[0]!.loss - b[0]!.loss;
    assert.ok(Math.abs(diff - 1) < 1e-4, `loss(margin 21) − loss(margin 20) = ${diff}`);
    const base = evalModelWith(def, res.backbone);
    const fused = fuseModel(base, plan, res.values);
    const x = float32([4, 1, 8, 8], new Rng(6).fillUniform(new Float32Array(256), 0, 1));
    const rep = await verifyFusion({
      original: base,
      fused,
      plan,
      denoisers: res.values,
      inputs: { input: x },
      tolerance: 1e-5,
      threads: 1,
    });
    assert.ok(rep.ok, rep.failures.join('; '));
  });
});

describe('the compute-matched control of label-augmented DenoiseRep', () => {
  test('same backbone steps, learning rates, batches, augmentation and dropout draws', async () => {
    const def = getPreset('vit-micro', { numClasses: 3, dropout: 0.1 });
    const built = buildBackbone(def, 'eval', 0).b.build();
    const base = ParamStore.fromInitializers(built.model.graph.initializers, [
      ...built.params,
      ...built.buffers,
    ]);
    const plan = planConversion(built.model.graph, { filter: 'mlp' });
    const cfg = {
      epochs: 4,
      phaseEpochs: 1,
      denoiseWeight: 0.1,
      batchSize: 16,
      lr: 1e-2,
      backboneLr: 1e-3,
      labelSmoothing: 0.1,
      seed: 2,
      threads: 1,
    };
    // An augmentation that draws from its stream: the draws must match too.
    const augment = (x: Float32Array, n: number, rng: Rng) =>
      x.map((v) => (rng.uniform() < 0.1 ? 1 - v : v));
    const train = async (control: boolean, seed = cfg.seed) => {
      const steps: StepInfo[] = [];
      const res = await trainLabelAugmented({
        def,
        backbone: base.clone(),
        plan,
        init: initDenoisers(plan, 1),
        data: data(48),
        filter: 'mlp',
        config: { ...cfg, seed },
        augment,
        control,
        onStep: (s) => steps.push(s),
      });
      return { res, backbone: steps.filter((s) => s.updates.includes('backbone')) };
    };
    const arm = await train(false);
    const ctl = await train(true);
    // 48 images in batches of 16: 3 steps per epoch; epochs 1 and 3 train the backbone.
    assert.equal(arm.res.compute.backboneSteps, 6);
    assert.equal(ctl.res.compute.backboneSteps, 6);
    assert.equal(arm.res.compute.denoiserSteps, 6);
    assert.equal(ctl.res.compute.denoiserSteps, 0);
    assert.deepEqual(
      ctl.res.history.map((h) => [h.epoch, h.phase]),
      [
        [1, 'backbone'],
        [3, 'backbone'],
      ],
    );
    assert.deepEqual(
      ctl.backbone.map((s) => [s.epoch, s.step, s.lr]),
      arm.backbone.map((s) => [s.epoch, s.step, s.lr]),
    );
    assert.deepEqual(
      ctl.backbone.map((s) => [...s.batch]),
      arm.backbone.map((s) => [...s.batch]),
    );
    // Every data feed (augmented images, targets, dropout masks) is the same tensor.
    ctl.backbone.forEach((s, k) => {
      const a = arm.backbone[k]!.feeds;
      assert.deepEqual(Object.keys(s.feeds).sort(), Object.keys(a).sort());
      assert.ok(Object.keys(a).some((n) => n.startsWith('mask::')));
      for (const n of Object.keys(a)) assert.deepEqual(s.feeds[n]!.data, a[n]!.data, n);
    });
    // The compute records agree in everything but the denoiser steps.
    assert.deepEqual({ ...ctl.res.compute, denoiserSteps: 6 }, arm.res.compute);
    const { backboneTrace } = ctl.res.compute;
    // They differ in the denoisers alone, which change where the backbone ends.
    assert.ok(
      built.params.some((n) =>
        ctl.res.backbone.get(n).data.some((v, i) => v !== arm.res.backbone.get(n).data[i]),
      ),
    );
    // The trace tells an unmatched run apart: another seed orders and draws differently.
    const other = await train(true, 3);
    assert.notEqual(other.res.compute.backboneTrace, backboneTrace);
    assert.notDeepEqual(
      other.backbone.map((s) => [...s.batch]),
      arm.backbone.map((s) => [...s.batch]),
    );
  });
});
