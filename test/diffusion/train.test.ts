// DDPM pretraining through the training loop: the loss falls, the EMA is kept with the
// checkpoint and is what loading a checkpoint returns, a resumed run is bit-identical, and
// `denoiserep pretrain --model ddpm-*` writes model.onnx that `sample` and `probe` read.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ImageDataset } from '../../src/data/dataset.js';
import { writeIdx } from '../../src/data/idx.js';
import { loadDiffusionModel } from '../../src/diffusion/load.js';
import { trainDdpm } from '../../src/diffusion/train.js';
import { getDiffusionPreset } from '../../src/models/registry.js';
import { Rng } from '../../src/util/rng.js';
import { lastJson, runHere } from '../cli/run-here.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-ddpm-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** n 8x8 images: a bright square at one of 4 places (the class), plus a little noise. */
function squares(n: number, seed: number, size = 8): ImageDataset {
  const rng = new Rng(seed);
  const per = size * size;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  const s = size / 2;
  for (let i = 0; i < n; i++) {
    const k = rng.int(4);
    labels[i] = k;
    const [r0, c0] = [Math.floor(k / 2) * s, (k % 2) * s];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const on = y >= r0 && y < r0 + s && x >= c0 && x < c0 + s;
        images[i * per + y * size + x] = Math.min(
          1,
          Math.max(0, (on ? 0.9 : 0.1) + 0.05 * rng.normal()),
        );
      }
    }
  }
  return {
    name: `squares-${seed}`,
    size: n,
    channels: 1,
    height: size,
    width: size,
    numClasses: 4,
    images,
    labels,
  };
}

const def = getDiffusionPreset('ddpm-unet-micro');
const config = { epochs: 4, batchSize: 16, lr: 3e-3, seed: 0, threads: 1, emaDecay: 0.9 };

describe('trainDdpm', () => {
  test('the loss falls; checkpoints keep the EMA, which loading returns', async () => {
    const out = join(dir, 'run');
    const r = await trainDdpm({ def, train: squares(64, 1), config, outDir: out });
    assert.equal(r.history.length, 4);
    const losses = r.history.map((h) => h.loss);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[3]! < 0.8 * losses[0]!, `losses ${losses.join(', ')}`);
    assert.ok(existsSync(join(out, 'checkpoint', 'ema.safetensors')));
    // The EMA trails the weights.
    const name = 'conv_out.weight';
    assert.notDeepEqual(Array.from(r.ema.get(name).data), Array.from(r.store.get(name).data));
    const loaded = await loadDiffusionModel(out);
    assert.match(loaded.source, /EMA weights/);
    assert.deepEqual(Array.from(loaded.values.get(name).data), Array.from(r.ema.get(name).data));
  });

  test('a run stopped after 2 epochs and resumed equals the uninterrupted run', async () => {
    const train = squares(48, 2);
    const whole = await trainDdpm({ def, train, config, outDir: join(dir, 'whole') });
    const part = join(dir, 'part');
    await trainDdpm({ def, train, config, outDir: part, stopAfter: 2 });
    const resumed = await trainDdpm({ def, train, config, outDir: part, resume: true });
    for (const n of whole.store.names()) {
      assert.deepEqual(
        Array.from(resumed.store.get(n).data),
        Array.from(whole.store.get(n).data),
        n,
      );
      assert.deepEqual(
        Array.from(resumed.ema.get(n).data),
        Array.from(whole.ema.get(n).data),
        `ema ${n}`,
      );
    }
    assert.deepEqual(
      resumed.history.map((h) => h.loss),
      whole.history.map((h) => h.loss),
    );
  });
});

describe('denoiserep pretrain --model ddpm-unet-fmnist-micro', () => {
  test('writes model.onnx (EMA) that sample and probe read; resume continues', async () => {
    // A 64-image IDX "data set" of 28x28 images, so that the run takes seconds.
    const data = join(dir, 'idx');
    mkdirSync(data);
    const big = squares(80, 3, 28);
    const u8 = (x: Float32Array) => Uint8Array.from(x, (v) => Math.round(255 * v));
    await writeIdx(join(data, 'train-images-idx3-ubyte'), {
      dtype: 'uint8',
      dims: [64, 28, 28],
      data: u8(big.images.subarray(0, 64 * 784)),
    });
    await writeIdx(join(data, 'train-labels-idx1-ubyte'), {
      dtype: 'uint8',
      dims: [64],
      data: Uint8Array.from(big.labels.subarray(0, 64)),
    });
    await writeIdx(join(data, 't10k-images-idx3-ubyte'), {
      dtype: 'uint8',
      dims: [16, 28, 28],
      data: u8(big.images.subarray(64 * 784)),
    });
    await writeIdx(join(data, 't10k-labels-idx1-ubyte'), {
      dtype: 'uint8',
      dims: [16],
      data: Uint8Array.from(big.labels.subarray(64)),
    });
    const out = join(dir, 'cli');
    const args = [
      'pretrain',
      '--model',
      'ddpm-unet-fmnist-micro',
      '--data',
      data,
      '--batch-size',
      '32',
      '--out',
      out,
      '--threads',
      '1',
      '--json',
    ];
    const a = await runHere(...args, '--epochs', '1');
    assert.equal(a.code, 0, a.err);
    assert.equal(lastJson<{ epochs: number }>(a.out).epochs, 1);
    const b = await runHere(...args, '--epochs', '2', '--resume', '--override');
    assert.equal(b.code, 0, b.err);
    assert.equal(lastJson<{ epochs: number; final: { epoch: number } }>(b.out).final.epoch, 1);
    assert.ok(existsSync(join(out, 'model.onnx')));
    const s = await runHere(
      'sample',
      out,
      '--n',
      '4',
      '--steps',
      '2',
      '--out',
      join(dir, 'g.png'),
      '--threads',
      '1',
      '--json',
    );
    assert.equal(s.code, 0, s.err);
    const p = await runHere(
      'probe',
      out,
      '--data',
      data,
      '--t',
      '0',
      '--block',
      'mid',
      '--epochs',
      '2',
      '--threads',
      '1',
      '--json',
    );
    assert.equal(p.code, 0, p.err);
    assert.equal(lastJson<{ block: string }>(p.out).block, 'mid');
    const bad = await runHere(...args, '--epochs', '1', '--init', out);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--init is not offered for diffusion presets/);
  });
});
