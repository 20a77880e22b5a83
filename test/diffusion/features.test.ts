// Diffusion features come from the requested block at the requested t: compared with the
// block's activation on an x_t formed here from the same seeded noise, and different for
// another block, another t, or another seed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { adaptivePool, FeatureExtractor, featureNoise } from '../../src/diffusion/features.js';
import { ddpmSchedule } from '../../src/diffusion/schedule.js';
import type { ImageDataset } from '../../src/data/dataset.js';
import { getDiffusionPreset } from '../../src/models/registry.js';
import { tapName, unetInitialWeights, unetModel } from '../../src/models/unet-graph.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

const def = getDiffusionPreset('ddpm-unet-micro');
const store = unetInitialWeights(def, 2);
const schedule = ddpmSchedule();
const rng = new Rng(8);
const data: ImageDataset = {
  name: 'toy',
  size: 5,
  channels: 1,
  height: 8,
  width: 8,
  numClasses: 2,
  images: new Float32Array(5 * 64).map(() => rng.uniform()),
  labels: Int32Array.from([0, 1, 0, 1, 0]),
};

/** The activation map of `block` for x_t built here: (2 px − 1) scaled plus seeded noise. */
async function reference(block: string, t: number, seed: number): Promise<Float32Array> {
  const ab = t === 0 ? 1 : schedule.alphaBars[t - 1]!;
  const xt = new Float32Array(5 * 64);
  for (let i = 0; i < 5; i++) {
    const eps = featureNoise(seed, 'train', i, 64);
    for (let k = 0; k < 64; k++) {
      const x0 = 2 * data.images[i * 64 + k]! - 1;
      xt[i * 64 + k] = t === 0 ? x0 : Math.sqrt(ab) * x0 + Math.sqrt(1 - ab) * eps[k]!;
    }
  }
  const s = await Session.create(unetModel(def, store, { eps: false, taps: [block] }), {
    threads: 1,
  });
  const out = await s.run({
    input: float32([5, 1, 8, 8], xt),
    timestep: float32([5], new Float32Array(5).fill(Math.max(0, t - 1))),
  });
  await s.release();
  return out[tapName(block)]!.data as Float32Array;
}

/** Mean over positions of [n, c, hw] maps. */
function meanPool(maps: Float32Array, n: number, c: number): Float32Array {
  const hw = maps.length / (n * c);
  const out = new Float32Array(n * c);
  for (let i = 0; i < n * c; i++) {
    let s = 0;
    for (let k = 0; k < hw; k++) s += maps[i * hw + k]!;
    out[i] = s / hw;
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('FeatureExtractor', () => {
  test('mean-pooled features of the requested block and t (batches of 2)', async () => {
    const fx = await FeatureExtractor.create(def, store, ['down.0', 'mid'], 'mean', schedule, {
      threads: 1,
      batchSize: 2,
    });
    for (const t of [0, 25, 400]) {
      const got = await fx.extract(data, t, { seed: 3, label: 'train' });
      const mid = got.get('mid')!;
      assert.deepEqual(mid.dims, [8]);
      assert.equal(mid.n, 5);
      const want = meanPool(await reference('mid', t, 3), 5, 8);
      assert.ok(maxDiff(mid.data, want) < 1e-5, `t=${t}: mid differs from the reference`);
      const down = got.get('down.0')!;
      assert.deepEqual(down.dims, [4]);
      assert.ok(maxDiff(down.data, meanPool(await reference('down.0', t, 3), 5, 4)) < 1e-5);
    }
    // Another t, another seed: other features (the reference at t=25 is not t=26's).
    const at25 = (await fx.extract(data, 25, { seed: 3, label: 'train' })).get('mid')!.data;
    const at26 = (await fx.extract(data, 26, { seed: 3, label: 'train' })).get('mid')!.data;
    const seed4 = (await fx.extract(data, 25, { seed: 4, label: 'train' })).get('mid')!.data;
    assert.ok(maxDiff(at25, at26) > 1e-4);
    assert.ok(maxDiff(at25, seed4) > 1e-4);
    await fx.release();
  });

  test('grid pooling keeps [C, g, g] per image', async () => {
    const fx = await FeatureExtractor.create(def, store, ['up.0'], { grid: 2 }, schedule, {
      threads: 1,
    });
    const f = (await fx.extract(data, 10, { seed: 0, label: 'train' })).get('up.0')!;
    await fx.release();
    assert.deepEqual(f.dims, [4, 2, 2]);
    const maps = await reference('up.0', 10, 0);
    assert.ok(maxDiff(f.data, adaptivePool(maps, 5, 4, 8, 8, 2)) < 1e-6);
  });

  test('unknown blocks and steps are refused by name', async () => {
    await assert.rejects(
      FeatureExtractor.create(def, store, ['middle'], 'mean', schedule),
      /has no block 'middle'/,
    );
    const fx = await FeatureExtractor.create(def, store, ['mid'], 'mean', schedule, { threads: 1 });
    await assert.rejects(
      fx.extract(data, 1001, { seed: 0, label: 'x' }),
      /--t must be an integer in 0..1000/,
    );
    await fx.release();
  });
});

describe('adaptivePool', () => {
  test('hand-worked: 3x3 to 2x2 uses overlapping bins (rows 0-1 and 1-2)', () => {
    const m = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(Array.from(adaptivePool(m, 1, 1, 3, 3, 2)), [3, 4, 6, 7]);
  });
});
