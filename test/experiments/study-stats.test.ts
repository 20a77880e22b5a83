import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { studentTQuantile, tInterval } from '../../src/eval/statistics.js';
import {
  type ArmInput,
  corruptedImageScores,
  type ModelScores,
  packBits,
  scoresFromJson,
  scoresToJson,
  summarizeStudy,
  unpackBits,
} from '../../src/experiments/study-stats.js';
import { DataError } from '../../src/util/errors.js';

const near = (a: number, b: number, tol = 1e-9, what = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

/** 100 images, the first `right` correct; 4 queries with the given APs; two splits. */
function scores(right: number, ap: number[], corrupt: [number, number]): ModelScores {
  const bits = (k: number) => Uint8Array.from({ length: 100 }, (_, i) => (i < k ? 1 : 0));
  return {
    correct: bits(right),
    queryAP: Float64Array.from(ap),
    corrupted: { 'jpeg/1': bits(corrupt[0]), 'jpeg/2': bits(corrupt[1]) },
  };
}

const opts = { seeds: [0, 1, 2], corruptions: ['jpeg'], severities: [1, 2], resamples: 1000 };

describe('summarizeStudy', () => {
  const base = scores(70, [0.5, 0.6, NaN, 0.7], [50, 40]);
  const arms: ArmInput[] = [
    { name: 'baseline', control: null, seedDependent: false, scores: [base, base, base] },
    {
      name: 'control',
      control: null,
      seedDependent: true,
      scores: [
        scores(72, [0.5, 0.6, NaN, 0.7], [50, 40]),
        scores(74, [0.5, 0.6, NaN, 0.7], [50, 40]),
        scores(73, [0.5, 0.6, NaN, 0.7], [50, 40]),
      ],
    },
    {
      name: 'label-aug',
      control: 'control',
      seedDependent: true,
      // Each seed: 10 more images right than its control, the same APs.
      scores: [
        scores(82, [0.5, 0.6, NaN, 0.7], [60, 40]),
        scores(84, [0.5, 0.6, NaN, 0.7], [60, 40]),
        scores(83, [0.5, 0.6, NaN, 0.7], [60, 40]),
      ],
    },
    {
      name: 'label-free-cf',
      control: 'baseline',
      seedDependent: false,
      scores: [base, base, base],
    },
  ];
  const s = summarizeStudy(
    arms,
    [{ noiseScale: 10, scores: scores(69, [0.5, 0.6, NaN, 0.7], [55, 40]) }],
    opts,
  );

  test('a trained arm gets a t-interval across seeds; a deterministic one a bootstrap over images', () => {
    const c = s.arms.control!.acc1;
    assert.deepEqual(c.perSeed, [72, 74, 73]);
    assert.equal(c.ciMethod, 't-across-seeds');
    const t = tInterval([72, 74, 73]);
    near(c.ci![0], t.ci![0]);
    near(c.ci![1], 73 + studentTQuantile(0.975, 2) / Math.sqrt(3));
    const b = s.arms.baseline!.acc1;
    assert.equal(b.ciMethod, 'bootstrap-images');
    near(b.mean, 70);
    // ±1.96·√(0.7·0.3/100) ≈ ±9 points, not zero width.
    assert.ok(b.ci![0] < 66 && b.ci![1] > 74, `${b.ci}`);
    // mAP over the three queries that have a match.
    near(s.arms.baseline!.map.mean, 60);
    assert.equal(s.arms.baseline!.map.ciMethod, 'bootstrap-queries');
  });

  test('differences: per seed paired over images, across seeds a t-interval; words from the interval', () => {
    const d = s.arms['label-aug']!.deltaVsControl!;
    assert.deepEqual(
      d.acc1.perSeed.map((x) => x.mean),
      [10, 10, 10],
    );
    // Every bootstrap resample of a difference that is +1 on 10 images and 0 elsewhere
    // has mean in [0, 20]; the t-interval of three equal means has zero width.
    for (const p of d.acc1.perSeed) assert.ok(p.ci[0] > 0 && p.ci[1] < 20);
    // McNemar: b = 10, c = 0: 2 · 0.5¹⁰.
    near(d.acc1.perSeed[0]!.mcnemarP!, 2 / 1024, 1e-12);
    assert.deepEqual(d.acc1.ci, [10, 10]);
    assert.equal(d.acc1.verdict, 'higher');
    // The same APs: no difference at all.
    assert.equal(d.map.mean, 0);
    assert.equal(d.map.verdict, 'no detectable difference');
    // Corrupted: +10 on one of two splits, +5 on the mean.
    near(d.corruptedAcc1.mean, 5);
    near(d.perCorruption.jpeg!.mean, 5);
    assert.equal(s.arms.baseline!.deltaVsControl, null);
  });

  test('a deterministic arm equal to its control: no detectable difference, mCE 100', () => {
    const d = s.arms['label-free-cf']!.deltaVsControl!;
    assert.equal(d.acc1.ciMethod, 'bootstrap-images');
    assert.deepEqual(d.acc1.ci, [0, 0]);
    assert.equal(d.acc1.verdict, 'no detectable difference');
    near(s.arms['label-free-cf']!.mCE!.mean, 100);
  });

  test('corrupted accuracy, per corruption, and mCE by hand', () => {
    // Baseline: splits at 50% and 40%: corrupted accuracy 45%.
    near(s.arms.baseline!.corruptedAcc1.mean, 45);
    near(s.arms.baseline!.perCorruption.jpeg!.mean, 45);
    // label-aug: errors 0.4 + 0.6 against the baseline's 0.5 + 0.6: CE = 1.0 / 1.1.
    near(s.arms['label-aug']!.mCE!.mean, (100 * 1.0) / 1.1);
  });

  test('the sweep is compared with the baseline, paired over images', () => {
    const p = s.sweep[0]!;
    assert.equal(p.noiseScale, 10);
    near(p.acc1.mean, 69);
    near(p.deltaVsBaseline.acc1.mean, -1);
    // One image lost out of 100: the interval reaches 0 (no detectable difference).
    assert.equal(p.deltaVsBaseline.acc1.verdict, 'no detectable difference');
    near(p.deltaVsBaseline.acc1.perSeed[0]!.mcnemarP!, 1);
    near(p.deltaVsBaseline.corruptedAcc1.mean, 2.5);
  });

  test('a control that did not run, or missing seeds, are data errors', () => {
    assert.throws(
      () => summarizeStudy([{ ...arms[2]!, control: 'nope' }], [], opts),
      (e) => e instanceof DataError && /nope/.test(e.message),
    );
    assert.throws(() => summarizeStudy([{ ...arms[0]!, scores: [base] }], [], opts), DataError);
  });
});

describe('score helpers', () => {
  test('per-image corrupted scores average the splits', () => {
    const x = scores(0, [1], [2, 1]);
    assert.deepEqual(
      Array.from(corruptedImageScores(x, ['jpeg/1', 'jpeg/2']).slice(0, 3)),
      [1, 0.5, 0],
    );
    assert.throws(() => corruptedImageScores(x, ['fog/1']), /fog\/1/);
  });

  test('bits and scores round-trip through JSON', () => {
    const bits = Uint8Array.from([1, 0, 0, 1, 1]);
    assert.equal(packBits(bits), '10011');
    assert.deepEqual(unpackBits('10011'), bits);
    assert.throws(() => unpackBits('10a'), DataError);
    const s = scores(3, [0.25, NaN], [1, 2]);
    const back = scoresFromJson(JSON.parse(JSON.stringify(scoresToJson(s))));
    assert.deepEqual(back.correct, s.correct);
    assert.ok(Number.isNaN(back.queryAP[1]) && back.queryAP[0] === 0.25);
    assert.deepEqual(back.corrupted['jpeg/2'], s.corrupted['jpeg/2']);
  });
});
