import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BatchShape,
  compose,
  horizontalFlip,
  normalize,
  randomCropWithPadding,
  randomErasing,
  resize,
  resizeBilinear,
} from '../../src/data/transforms.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `index ${i}: ${a[i]} vs ${b[i]}`);
};

describe('horizontalFlip', () => {
  test('flips a known 2×3 image when p = 1 and leaves the input untouched', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const y = horizontalFlip(1)(x, { n: 1, c: 1, h: 2, w: 3 }, new Rng(0));
    assert.deepEqual(Array.from(y), [3, 2, 1, 6, 5, 4]);
    assert.deepEqual(Array.from(x), [1, 2, 3, 4, 5, 6]);
  });

  test('p = 0 is the identity; every channel of an image flips together', () => {
    const x = Float32Array.from({ length: 2 * 2 * 1 * 3 }, (_, i) => i);
    const s = { n: 2, c: 2, h: 1, w: 3 };
    assert.deepEqual(Array.from(horizontalFlip(0)(x, s, new Rng(1))), Array.from(x));
    assert.deepEqual(
      Array.from(horizontalFlip(1)(x, s, new Rng(1))),
      [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9],
    );
  });

  test('p = 0.5 flips about half of the images, the same ones for the same seed', () => {
    const n = 400;
    const x = Float32Array.from({ length: n * 2 }, (_, i) => i % 2);
    const s = { n, c: 1, h: 1, w: 2 };
    const y = horizontalFlip(0.5)(x, s, new Rng(7));
    let flipped = 0;
    for (let i = 0; i < n; i++) if (y[2 * i] === 1) flipped++;
    assert.ok(flipped > 150 && flipped < 250, `${flipped}`);
    assert.deepEqual(y, horizontalFlip(0.5)(x, s, new Rng(7)));
  });
});

describe('randomCropWithPadding', () => {
  test('keeps the shape; each image is its input shifted by |d| ≤ pad with a zero border', () => {
    const s: BatchShape = { n: 60, c: 2, h: 4, w: 5 };
    const hw = s.h * s.w;
    // Positive, distinct values so a zero can only come from the padding.
    const x = Float32Array.from({ length: s.n * s.c * hw }, (_, i) => 1 + (i % (s.c * hw)));
    const pad = 2;
    const y = randomCropWithPadding(pad)(x, s, new Rng(3));
    assert.equal(y.length, x.length);
    let shifted = 0;
    for (let i = 0; i < s.n; i++) {
      const img = y.subarray(i * s.c * hw, (i + 1) * s.c * hw);
      const matches: [number, number][] = [];
      for (let dy = -pad; dy <= pad; dy++) {
        for (let dx = -pad; dx <= pad; dx++) {
          let ok = true;
          for (let c = 0; c < s.c && ok; c++) {
            for (let r = 0; r < s.h && ok; r++) {
              for (let q = 0; q < s.w && ok; q++) {
                const sy = r + dy;
                const sx = q + dx;
                const want =
                  sy >= 0 && sy < s.h && sx >= 0 && sx < s.w ? 1 + c * hw + sy * s.w + sx : 0;
                ok = img[c * hw + r * s.w + q] === want;
              }
            }
          }
          if (ok) matches.push([dy, dx]);
        }
      }
      assert.equal(matches.length, 1, `image ${i} is not a padded shift of its input`);
      if (matches[0]![0] !== 0 || matches[0]![1] !== 0) shifted++;
    }
    assert.ok(shifted > 30, `only ${shifted} of 60 images were shifted`);
  });

  test('pad = 0 is the identity', () => {
    const x = Float32Array.from([1, 2, 3, 4]);
    assert.deepEqual(randomCropWithPadding(0)(x, { n: 1, c: 1, h: 2, w: 2 }, new Rng(0)), x);
  });

  test('the border takes the fill value', () => {
    const s = { n: 30, c: 1, h: 3, w: 3 };
    const y = randomCropWithPadding(3, -1)(new Float32Array(30 * 9).fill(0.5), s, new Rng(5));
    assert.ok(y.every((v) => v === 0.5 || v === -1));
    assert.ok(y.some((v) => v === -1));
  });
});

describe('randomErasing', () => {
  const s: BatchShape = { n: 40, c: 3, h: 20, w: 10 };
  const hw = s.h * s.w;
  const x = new Float32Array(s.n * s.c * hw).fill(0.5);

  test('p = 1: every image gets exactly one filled rectangle, the same on all channels', () => {
    const y = randomErasing({ p: 1, value: [-1, -2, -3] })(x, s, new Rng(11));
    for (let i = 0; i < s.n; i++) {
      let top = s.h;
      let bottom = -1;
      let left = s.w;
      let right = -1;
      let count = 0;
      for (let r = 0; r < s.h; r++) {
        for (let q = 0; q < s.w; q++) {
          const v0 = y[i * 3 * hw + r * s.w + q]!;
          if (v0 === 0.5) {
            assert.equal(y[(i * 3 + 1) * hw + r * s.w + q], 0.5);
            assert.equal(y[(i * 3 + 2) * hw + r * s.w + q], 0.5);
            continue;
          }
          assert.equal(v0, -1);
          assert.equal(y[(i * 3 + 1) * hw + r * s.w + q], -2);
          assert.equal(y[(i * 3 + 2) * hw + r * s.w + q], -3);
          count++;
          top = Math.min(top, r);
          bottom = Math.max(bottom, r);
          left = Math.min(left, q);
          right = Math.max(right, q);
        }
      }
      // With 10 attempts on a 20×10 image a fitting rectangle is found with near certainty.
      assert.ok(count > 0, `image ${i} was not erased`);
      const eh = bottom - top + 1;
      const ew = right - left + 1;
      assert.equal(count, eh * ew, `image ${i}: erased pixels do not form a rectangle`);
      assert.ok(eh < s.h && ew < s.w);
      // Rounding each side by at most 0.5 pixel widens the [0.02, 0.33] area range a little.
      assert.ok(
        count >= 1 &&
          count <= (Math.sqrt(0.33 * hw * 3.3) + 0.5) * (Math.sqrt((0.33 * hw) / 0.3) + 0.5),
      );
    }
    assert.deepEqual(Array.from(x.subarray(0, 5)), [0.5, 0.5, 0.5, 0.5, 0.5], 'input untouched');
  });

  test('p = 0 is the identity; same seed gives the same result', () => {
    assert.deepEqual(randomErasing({ p: 0 })(x, s, new Rng(1)), x);
    const t = randomErasing({ p: 0.5, value: 'random' });
    assert.deepEqual(t(x, s, new Rng(2)), t(x, s, new Rng(2)));
  });

  test("value 'random' fills with varied noise", () => {
    const y = randomErasing({ p: 1, value: 'random' })(
      x.subarray(0, 3 * hw),
      { ...s, n: 1 },
      new Rng(4),
    );
    const erased = Array.from(y).filter((v) => v !== 0.5);
    assert.ok(erased.length > 3);
    assert.ok(new Set(erased).size > erased.length / 2);
  });

  test('bad options are UsageErrors', () => {
    assert.throws(() => randomErasing({ p: 2 }), UsageError);
    assert.throws(() => randomErasing({ scale: [0.5, 0.1] }), UsageError);
    assert.throws(() => randomErasing({ value: [0, 0] })(x, s, new Rng(0)), UsageError);
  });
});

describe('normalize', () => {
  test('per-channel (x - mean) / std', () => {
    const x = Float32Array.from([0, 0.5, 1, 0.25, 0, 1, 0.75, 0.5]);
    const y = normalize([0.5, 0.25], [0.5, 2])(x, { n: 2, c: 2, h: 1, w: 2 }, new Rng(0));
    // image 0: c0 [0, .5] -> [-1, 0]; c1 [1, .25] -> [.375, 0]; image 1: c0 [0, 1] -> [-1, 1]; c1 [.75, .5] -> [.25, .125]
    close(y, [-1, 0, 0.375, 0, -1, 1, 0.25, 0.125]);
  });

  test('mismatched channel counts and non-positive std are UsageErrors', () => {
    assert.throws(
      () => normalize([0.5], [0.5])(new Float32Array(2), { n: 1, c: 2, h: 1, w: 1 }, new Rng(0)),
      UsageError,
    );
    assert.throws(() => normalize([0.5], [0]), UsageError);
  });
});

describe('resizeBilinear', () => {
  test('2×2 → 4×4 with half-pixel centres (PyTorch align_corners=False)', () => {
    const y = resizeBilinear(Float32Array.from([0, 1, 2, 3]), { n: 1, c: 1, h: 2, w: 2 }, 4, 4);
    // Column samples at source x = max(-0.25, 0), 0.25, 0.75, 1.25 → clamped to the last pixel.
    close(y, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  test('4×4 → 2×2 averages 2×2 blocks; same size is the identity; planes are independent', () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => i);
    const y = resizeBilinear(x, { n: 2, c: 1, h: 4, w: 4 }, 2, 2);
    close(y, [2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5]);
    close(resizeBilinear(x, { n: 1, c: 2, h: 4, w: 4 }, 4, 4), x);
  });
});

describe('compose', () => {
  test('applies transforms in order and passes the resized shape on', () => {
    const t = compose(resize([4, 4]), horizontalFlip(1), normalize([1], [2]));
    assert.deepEqual(t.outputShape!({ n: 1, c: 1, h: 2, w: 2 }), { n: 1, c: 1, h: 4, w: 4 });
    const y = t(Float32Array.from([0, 1, 2, 3]), { n: 1, c: 1, h: 2, w: 2 }, new Rng(0));
    const expected = [
      1, 0.75, 0.25, 0, 1.5, 1.25, 0.75, 0.5, 2.5, 2.25, 1.75, 1.5, 3, 2.75, 2.25, 2,
    ].map((v) => (v - 1) / 2);
    close(y, expected);
  });
});
