// The supervised training loop: learning on the committed Fashion-MNIST subset, and
// bit-identical resume from an epoch checkpoint.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { ImageDataset } from '../../src/data/dataset.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { getPreset } from '../../src/models/registry.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { type SupervisedConfig, trainSupervised } from '../../src/train/loop.js';
import { Rng } from '../../src/train/rng.js';

/** 8x8 grey images of 3 classes: a bright quadrant per class plus noise. */
function blobs(n: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const images = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    for (let p = 0; p < 64; p++) {
      const [y, x] = [p >> 3, p & 7];
      const on = c === 0 ? y < 4 && x < 4 : c === 1 ? y >= 4 && x >= 4 : y < 4 && x >= 4;
      images[i * 64 + p] = (on ? 0.8 : 0.1) + 0.1 * rng.normal();
    }
  }
  return {
    name: 'blobs',
    size: n,
    channels: 1,
    height: 8,
    width: 8,
    numClasses: 3,
    images,
    labels,
  };
}

describe('supervised training loop', () => {
  test('a small MLP beats 80% acc@1 on the committed Fashion-MNIST subset in 2 epochs', async () => {
    const train = await loadFashionMnist('embedded', 'train');
    const testSet = await loadFashionMnist('embedded', 'test');
    const res = await trainSupervised({
      def: getPreset('mlp-fmnist'),
      train,
      test: testSet,
      config: {
        epochs: 2,
        batchSize: 128,
        lr: 3e-3,
        minLr: 1e-5,
        warmupEpochs: 0.2,
        weightDecay: 0.01,
        seed: 0,
      },
    });
    const [first, last] = [res.history[0]!, res.history.at(-1)!];
    assert.ok(last.loss < first.loss, `loss ${first.loss} -> ${last.loss}`);
    assert.ok(last.eval!.acc1 > 0.8, `acc@1 ${last.eval!.acc1}`);
  });

  test('1 epoch + resume + 1 epoch gives bit-identical weights to 2 epochs straight', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'denoiserep-resume-'));
    try {
      const def = getPreset('resnet-micro', { numClasses: 3 });
      const train = blobs(96, 1);
      const cfg: SupervisedConfig = {
        epochs: 2,
        batchSize: 16,
        lr: 1e-2,
        warmupEpochs: 0.5,
        seed: 4,
        augment: { cropPad: 1, flip: true },
        labelSmoothing: 0.1,
      };
      const straight = await trainSupervised({ def, train, config: cfg, outDir: join(dir, 'a') });
      await trainSupervised({ def, train, config: cfg, outDir: join(dir, 'b'), stopAfter: 1 });
      const ck = loadCheckpoint(join(dir, 'b', 'checkpoint'));
      assert.equal(ck.state.epoch, 0);
      const resumed = await trainSupervised({
        def,
        train,
        config: cfg,
        outDir: join(dir, 'b'),
        resume: true,
      });
      for (const name of straight.store.names()) {
        assert.deepEqual(resumed.store.get(name).data, straight.store.get(name).data, name);
      }
      assert.equal(resumed.history.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
