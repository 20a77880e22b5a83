// The one pipeline (plan → statistics or training → fuse → verify → diagnostics → files) on
// a tiny ViT in memory: the closed form from images equals the closed form from the same
// statistics computed beforehand, the fused model verifies, the diagnostics hold the loss
// of the zero start and of the fit, progress counts the images, a failed verification
// stops before any file, and the files hold what the steps produced.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { feedBatches, type ImageDataset } from '../../src/data/dataset.js';
import { readDenoisers } from '../../src/denoise/denoiser-file.js';
import {
  collectStatistics,
  fitAndFuse,
  type ProgressEvent,
  runPipeline,
} from '../../src/denoise/pipeline.js';
import { planConversion } from '../../src/denoise/plan.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { readModel } from '../../src/onnx/serialize.js';
import { DataError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-pipeline-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const model = buildBackbone(getPreset('vit-micro', { numClasses: 3 }), 'eval', 0).b.build().model;
const inputName = model.graph.inputs[0]!.name;

/** 20 random 8x8 grey images. */
function images(n = 20): ImageDataset {
  const rng = new Rng(2);
  return {
    name: 'random',
    size: n,
    channels: 1,
    height: 8,
    width: 8,
    numClasses: 0,
    images: rng.fillUniform(new Float32Array(n * 64), 0, 1),
    labels: new Int32Array(n).fill(-1),
  };
}

describe('pipeline', () => {
  test('closed form from images = closed form from the same statistics; verified, diagnosed, written', async () => {
    const data = images();
    const plan = planConversion(model.graph, { filter: 'mlp' });
    const feeds = { data, inputName, batchSize: 8 };
    const events: ProgressEvent[] = [];
    const r = await runPipeline({
      model,
      plan,
      seed: 0,
      threads: 1,
      method: { kind: 'closed-form', images: feeds },
      onProgress: (e) => events.push(e),
      verify: {
        inputs: feedBatches(data, inputName, 8).next().value!,
        latencyBatches: [],
        requireOk: true,
      },
      losses: { data, batchSize: 8 },
      files: {
        model: join(dir, 'fused.onnx'),
        denoisers: { path: join(dir, 'd.safetensors'), filter: 'mlp', meta: { arm: 'x' } },
        diagnostics: {
          json: join(dir, 'diag.json'),
          svg: join(dir, 'diag.svg'),
          png: join(dir, 'diag.png'),
          content: (f, c) => ({ fit: f.fit.length, layers: c.layers }),
        },
      },
    });
    assert.ok(r.verification!.ok, r.verification!.failures.join('; '));
    assert.equal(r.verification!.topology.identical, true);

    // Statistics counted image by image up to all 20, in batches of 8.
    const stats = events.filter((e) => e.stage === 'statistics').map((e) => e.done);
    assert.deepEqual(stats, [0, 8, 16, 20]);
    assert.deepEqual(
      [...new Set(events.map((e) => e.stage))],
      ['statistics', 'fuse', 'verify', 'diagnostics', 'write'],
    );

    // The closed form starts from zero denoisers, and the fit lowers the loss in every layer.
    for (const t of r.start.values()) assert.ok(t.data.every((v) => v === 0));
    assert.equal(r.layers.length, plan.layers.length);
    for (const l of r.layers) assert.ok(l.lossAfter! < l.lossBefore!, `${l.layer}`);

    // The same fit from statistics gathered beforehand: identical denoisers.
    const moments = await collectStatistics(model, plan, feeds, { threads: 1 });
    const again = await fitAndFuse(
      model,
      plan,
      { kind: 'closed-form-stats', stats: moments },
      { seed: 0, threads: 1 },
    );
    for (const [name, t] of r.values) assert.deepEqual(again.values.get(name)!.data, t.data, name);
    // The closed form spends no optimiser step: no compute record. A trained fit carries the
    // training loop's record.
    assert.equal(r.compute, undefined);
    const sgd = await fitAndFuse(
      model,
      plan,
      { kind: 'sgd', images: feeds, epochs: 2, lr: 1e-3 },
      { seed: 0, threads: 1 },
    );
    // 20 images in batches of 8: 3 steps per epoch, 2 epochs; the backbone untouched.
    assert.equal(sgd.compute!.denoiserSteps, 6);
    assert.equal(sgd.compute!.backboneSteps, 0);

    // Files: the fused model as fused, the denoisers with their plan, the diagnostics.
    const written = await readModel(join(dir, 'fused.onnx'));
    for (const p of plan.layers)
      assert.deepEqual(
        written.graph.initializers.get(p.layer.weight)!.data,
        r.fused.graph.initializers.get(p.layer.weight)!.data,
      );
    const d = readDenoisers(join(dir, 'd.safetensors'), model.graph, 'vit-micro');
    assert.equal(d.plan.layers.length, plan.layers.length);
    const diag = JSON.parse(readFileSync(join(dir, 'diag.json'), 'utf8')) as {
      fit: number;
      layers: unknown;
    };
    assert.equal(diag.fit, plan.layers.length);
    assert.deepEqual(diag.layers, JSON.parse(JSON.stringify(r.layers)));
    assert.match(readFileSync(join(dir, 'diag.svg'), 'utf8'), /^<svg [^]*<\/svg>$/);
  });

  test('a shard feeds every n-th image, and progress counts only those', async () => {
    const data = images(10);
    const plan = planConversion(model.graph, { filter: 'mlp' });
    const events: ProgressEvent[] = [];
    const stats = await collectStatistics(
      model,
      plan,
      { data, inputName, batchSize: 2, shard: { index: 1, count: 3 } },
      { threads: 1, onProgress: (e) => events.push(e) },
    );
    // Images 1, 4 and 7 of 10: 3/10 of the feature rows of a pass over all.
    assert.deepEqual(
      events.map((e) => [e.done, e.total]),
      [
        [0, 3],
        [2, 3],
        [3, 3],
      ],
    );
    const tokens = (
      await collectStatistics(model, plan, { data, inputName, batchSize: 10 }, { threads: 1 })
    )
      .values()
      .next().value!.count;
    assert.equal([...stats.values()][0]!.count * 10, tokens * 3);
  });

  test('a failed verification stops the pipeline before diagnostics and files', async () => {
    const data = images(8);
    const plan = planConversion(model.graph, { filter: 'mlp' });
    const stages: string[] = [];
    await assert.rejects(
      runPipeline({
        model,
        plan,
        seed: 0,
        threads: 1,
        method: { kind: 'closed-form', images: { data, inputName, batchSize: 8 } },
        onProgress: (e) => stages.push(e.stage),
        // No error is below a negative tolerance: verification must fail.
        verify: {
          inputs: feedBatches(data, inputName, 8).next().value!,
          latencyBatches: [],
          tolerance: -1,
          requireOk: true,
        },
        files: { model: join(dir, 'never.onnx') },
      }),
      (e) => e instanceof DataError && /failed verification: .*relative error/.test(e.message),
    );
    assert.ok(!stages.includes('diagnostics') && !stages.includes('write'), stages.join());
    assert.equal(existsSync(join(dir, 'never.onnx')), false);
  });
});
