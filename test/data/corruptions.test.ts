import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  CORRUPTION_NAMES,
  CORRUPTIONS,
  corruptDataset,
  corruptedSplits,
  corruptImage,
  parseCorruptions,
} from '../../src/data/corruptions.js';
import { type ImageDataset, subset } from '../../src/data/dataset.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const gray = { c: 1, h: 4, w: 4 };
/** Values as 8-bit levels (the corruptions round to multiples of 1/255). */
const bytes = (x: Float32Array) => Array.from(x, (v) => Math.round(255 * v));

function meanSquaredChange(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
}

function synthetic(n: number, c: number, h: number, w: number, fill: (i: number) => number) {
  const images = Float32Array.from({ length: n * c * h * w }, (_, i) => fill(i));
  return {
    name: 'synthetic',
    size: n,
    channels: c,
    height: h,
    width: w,
    numClasses: 2,
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
  } satisfies ImageDataset;
}

describe('corruptions', () => {
  let sample: ImageDataset;
  before(async () => {
    const test = await loadFashionMnist('embedded', 'test');
    sample = subset(
      test,
      Int32Array.from({ length: 48 }, (_, i) => i * 37),
    );
  });

  test('ten corruptions with five levels each', () => {
    assert.equal(CORRUPTION_NAMES.length, 10);
    for (const n of CORRUPTION_NAMES) assert.equal(CORRUPTIONS[n].levels.length, 5);
  });

  test('every severity of every corruption moves the images further from the clean ones', async () => {
    for (const name of CORRUPTION_NAMES) {
      let prev = 0;
      for (let s = 1; s <= 5; s++) {
        const c = await corruptDataset(sample, name, s, 0);
        const d = meanSquaredChange(c.images, sample.images);
        assert.ok(d > prev, `${name}: severity ${s} changes ${d}, severity ${s - 1} ${prev}`);
        prev = d;
      }
    }
  });

  test('values stay in [0, 1] on the 8-bit grid; labels are kept', async () => {
    for (const name of CORRUPTION_NAMES) {
      const c = await corruptDataset(sample, name, 5, 3);
      assert.deepEqual(c.labels, sample.labels);
      assert.equal(c.images.length, sample.images.length);
      for (const v of c.images) {
        assert.ok(v >= 0 && v <= 1, `${name}: value ${v}`);
        assert.ok(Math.abs(v * 255 - Math.round(v * 255)) < 1e-4, `${name}: ${v} off the grid`);
      }
    }
  });

  test('deterministic: the same seed repeats, another seed differs; an image depends only on its index', async () => {
    const a = await corruptDataset(sample, 'gaussian-noise', 2, 7);
    const b = await corruptDataset(sample, 'gaussian-noise', 2, 7);
    const c = await corruptDataset(sample, 'gaussian-noise', 2, 8);
    assert.deepEqual(a.images, b.images);
    assert.notDeepEqual(a.images, c.images);
    // Replace every image but #5: image #5's corruption is unchanged.
    const other = { ...sample, images: sample.images.slice() };
    const per = 28 * 28;
    for (let i = 0; i < sample.size; i++)
      if (i !== 5) other.images.fill(0.5, i * per, (i + 1) * per);
    const d = await corruptDataset(other, 'gaussian-noise', 2, 7);
    assert.deepEqual(d.images.subarray(5 * per, 6 * per), a.images.subarray(5 * per, 6 * per));
    for (const name of ['motion-blur', 'impulse-noise', 'jpeg'] as const) {
      const x = await corruptDataset(sample, name, 4, 1);
      const y = await corruptDataset(sample, name, 4, 1);
      assert.deepEqual(x.images, y.images, name);
    }
  });

  test('contrast at c leaves a constant image alone and maps (x − m)·c + m', async () => {
    const k = new Float32Array(16).fill(102 / 255);
    for (let s = 1; s <= 5; s++) {
      const y = await corruptImage(k, gray, 'contrast', s, new Rng(0));
      assert.deepEqual(Array.from(y), Array.from(k));
    }
    // Half 0, half 1: mean 0.5; severity 3 (c = 0.2) gives 0.4 and 0.6 (102 and 153 of 255).
    const x = Float32Array.from({ length: 16 }, (_, i) => (i < 8 ? 0 : 1));
    const y = await corruptImage(x, gray, 'contrast', 3, new Rng(0));
    for (let i = 0; i < 16; i++) assert.equal(Math.round(255 * y[i]!), i < 8 ? 102 : 153);
  });

  test('brightness adds to grey values (clipped at 1) and scales RGB by V′/V', async () => {
    const x = Float32Array.from([102 / 255, 0.95, 0, 1]);
    const y = await corruptImage(x, { c: 1, h: 2, w: 2 }, 'brightness', 2, new Rng(0));
    assert.deepEqual(bytes(y), [153, 255, 51, 255]);
    // One RGB pixel (0.4, 0.2, 0) has V = 0.4; severity 2 gives V' = 0.6: (0.6, 0.3, 0).
    // A black pixel becomes grey at V' = 0.2.
    const rgb = Float32Array.from([0.4, 0, 0.2, 0, 0, 0]);
    const z = await corruptImage(rgb, { c: 3, h: 1, w: 2 }, 'brightness', 2, new Rng(0));
    assert.deepEqual(bytes(z), [153, 51, 77, 51, 0, 51]);
  });

  test('pixelate at 0.5 replaces each 2×2 block of a 4×4 image by its mean', async () => {
    const v = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60];
    const x = Float32Array.from(v, (a) => a / 255);
    const y = await corruptImage(x, gray, 'pixelate', 2, new Rng(0));
    const blocks = [
      [10, 10, 18, 18],
      [10, 10, 18, 18],
      [42, 42, 50, 50],
      [42, 42, 50, 50],
    ].flat();
    assert.deepEqual(
      Array.from(y, (a) => Math.round(a * 255)),
      blocks,
    );
  });

  test('blurs keep a constant image; shot noise keeps black black and its mean', async () => {
    const k = new Float32Array(36).fill(153 / 255);
    for (const name of ['gaussian-blur', 'motion-blur', 'pixelate'] as const) {
      const y = await corruptImage(k, { c: 1, h: 6, w: 6 }, name, 5, new Rng(1));
      assert.deepEqual(Array.from(y), Array.from(k), name);
    }
    const zero = new Float32Array(400);
    const y = await corruptImage(zero, { c: 1, h: 20, w: 20 }, 'shot-noise', 5, new Rng(2));
    assert.ok(y.every((v) => v === 0));
    const half = new Float32Array(40000).fill(0.5);
    const s = await corruptImage(half, { c: 1, h: 200, w: 200 }, 'shot-noise', 2, new Rng(3));
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    // Poisson(12.5)/25: mean 0.5, std 0.141; the mean of 40,000 draws is within 0.003.
    assert.ok(Math.abs(mean - 0.5) < 0.003, `mean ${mean}`);
  });

  test('gaussian noise has the level as its std; impulse noise hits the level as a fraction', async () => {
    const half = new Float32Array(40000).fill(102 / 255);
    const shape = { c: 1, h: 200, w: 200 };
    const g = await corruptImage(half, shape, 'gaussian-noise', 1, new Rng(4));
    let ss = 0;
    for (const v of g) ss += (v - half[0]!) ** 2;
    const std = Math.sqrt(ss / g.length);
    // σ = 0.08 plus the 8-bit rounding (variance 1/12 of a step²).
    const expected = Math.sqrt(0.08 ** 2 + 1 / (12 * 255 * 255));
    assert.ok(Math.abs(std - expected) < 0.002, `std ${std} vs ${expected}`);
    // The impulse positions are nested across severities (the same draws, a larger level).
    let prevHit: boolean[] | undefined;
    for (let s = 1; s <= 5; s++) {
      const y = await corruptImage(half, shape, 'impulse-noise', s, new Rng(5));
      const hit = Array.from(y, (v, i) => v !== half[i]);
      const frac = hit.filter(Boolean).length / hit.length;
      const level = CORRUPTIONS['impulse-noise'].levels[s - 1]!;
      assert.ok(Math.abs(frac - level) < 0.01, `severity ${s}: ${frac} vs ${level}`);
      if (prevHit) prevHit.forEach((h, i) => h && assert.ok(hit[i], `pixel ${i} lost its hit`));
      prevHit = hit;
    }
  });

  test('JPEG of a whole grey set (tiled) gives the pixels of one encoding per image', async () => {
    for (const s of [1, 5]) {
      const all = await corruptDataset(sample, 'jpeg', s, 0);
      const per = 28 * 28;
      let changed = 0;
      for (let i = 0; i < sample.size; i++) {
        const one = await corruptImage(
          sample.images.subarray(i * per, (i + 1) * per),
          { c: 1, h: 28, w: 28 },
          'jpeg',
          s,
          new Rng(0),
        );
        assert.deepEqual(bytes(all.images.subarray(i * per, (i + 1) * per)), bytes(one), `image ${i}`);
        changed += meanSquaredChange(one, sample.images.subarray(i * per, (i + 1) * per));
      }
      assert.ok(changed > 0);
    }
  });

  test('works on RGB images, one split at a time', async () => {
    const ds = synthetic(3, 3, 8, 8, (i) => ((i * 37) % 256) / 255);
    const seen: string[] = [];
    for await (const s of corruptedSplits(ds, { corruptions: ['jpeg', 'brightness'], severities: [1, 5] })) {
      seen.push(`${s.corruption}/${s.severity}`);
      assert.equal(s.data.images.length, ds.images.length);
      assert.ok(meanSquaredChange(s.data.images, ds.images) > 0);
    }
    assert.deepEqual(seen, ['jpeg/1', 'jpeg/5', 'brightness/1', 'brightness/5']);
  });

  test('bad names and severities are usage errors naming them', async () => {
    assert.throws(() => parseCorruptions(['fog']), (e) => e instanceof UsageError && /fog/.test(e.message));
    assert.deepEqual(parseCorruptions(['all']), [...CORRUPTION_NAMES]);
    await assert.rejects(
      corruptDataset(sample, 'contrast', 6),
      (e) => e instanceof UsageError && /severity/.test(e.message),
    );
  });
});
