// Label-augmented DenoiseRep: phase A trains only the denoisers, phase B only the
// backbone (through the fused weights); the result fuses exactly.
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
import { Rng } from '../../src/util/rng.js';

function data(n: number): ImageDataset {
  const rng = new Rng(3);
  const images = rng.fillUniform(new Float32Array(n * 64), 0, 1);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  for (let i = 0; i < n; i++)
    for (let p = 0; p < 16; p++) images[i * 64 + labels[i]! * 16 + p] += 1;
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
    const backbone = ParamStore.fromInitializers(built.model.graph.initializers, [
      ...built.params,
      ...built.buffers,
    ]);
    const plan = planConversion(built.model.graph, { filter: 'mlp' });
    const losses: number[] = [];
    const res = await trainLabelAugmented({
      def,
      backbone,
      plan,
      init: initDenoisers(plan, 2),
      data: data(48),
      filter: 'mlp',
      config: {
        epochs: 2,
        phaseEpochs: 1,
        denoiseWeight: 0.1,
        batchSize: 12,
        pkP: 3,
        task: 'reid',
        lr: 1e-2,
        backboneLr: 1e-3,
        seed: 1,
        threads: 1,
      },
      log: (r) => {
        if (r.kind === 'step' && r.phase === 'backbone') losses.push(Number(r.loss));
      },
    });
    // PK batches of 3 identities x 4 images; every backbone step has a finite loss.
    assert.ok(losses.length > 0 && losses.every(Number.isFinite));
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
