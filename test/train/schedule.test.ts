// Learning-rate schedules at hand-computed points.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/util/errors.js';
import { constantLr, cosineWithWarmup } from '../../src/train/schedule.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12, `${a} vs ${b}`);

describe('cosineWithWarmup', () => {
  // base 1e-3, min 1e-5, 10 warm-up steps, 110 in all: the cosine spans steps 10..110.
  const lr = cosineWithWarmup({ baseLr: 1e-3, minLr: 1e-5, warmupSteps: 10, totalSteps: 110 });

  test('step 0, mid warm-up, end of warm-up (the maximum), middle, quarter, end', () => {
    close(lr(0), 0);
    close(lr(5), 5e-4); // half-way up the line
    close(lr(9), 9e-4);
    assert.equal(lr(10), 1e-3); // cos(0) = 1: exactly the base rate
    // Quarter of the cosine (step 35): 1e-5 + 0.5 · 0.99e-3 · (1 + cos(π/4))
    //   = 1e-5 + 0.495e-3 · 1.7071067812 = 8.5501785669e-4.
    close(lr(35), 8.5501785669e-4);
    // Middle (step 60): cos(π/2) = 0 -> (1e-3 + 1e-5) / 2 = 5.05e-4.
    close(lr(60), 5.05e-4);
    close(lr(110), 1e-5);
    assert.equal(lr(500), 1e-5);
    // The maximum over the whole run is at step 10, and only there.
    const all = Array.from({ length: 111 }, (_, s) => lr(s));
    assert.equal(all.indexOf(Math.max(...all)), 10);
    assert.equal(all.filter((x) => x === 1e-3).length, 1);
    // Strictly decreasing after the warm-up.
    for (let s = 11; s <= 110; s++) assert.ok(all[s]! < all[s - 1]!, `step ${s}`);
  });

  test('warm-up start rate; no warm-up starts at the base rate', () => {
    const w = cosineWithWarmup({
      baseLr: 1e-3,
      warmupSteps: 4,
      totalSteps: 8,
      warmupStartLr: 2e-4,
    });
    close(w(0), 2e-4);
    close(w(2), 6e-4); // 2e-4 + (8e-4) · 2/4
    close(w(6), 5e-4); // middle of a cosine to 0
    const n = cosineWithWarmup({ baseLr: 0.1, totalSteps: 4 });
    assert.equal(n(0), 0.1);
    close(n(2), 0.05);
  });

  test('bad arguments are UsageErrors naming the option', () => {
    assert.throws(() => cosineWithWarmup({ baseLr: 0, totalSteps: 10 }), /--lr/);
    assert.throws(() => cosineWithWarmup({ baseLr: 1, minLr: 2, totalSteps: 10 }), /--min-lr/);
    assert.throws(() => cosineWithWarmup({ baseLr: 1, totalSteps: 0 }), /total steps/);
    assert.throws(() => cosineWithWarmup({ baseLr: 1, totalSteps: 2.5 }), UsageError);
    assert.throws(
      () => cosineWithWarmup({ baseLr: 1, warmupSteps: 11, totalSteps: 10 }),
      /warm-up steps/,
    );
    assert.throws(
      () => cosineWithWarmup({ baseLr: 1, totalSteps: 10, warmupStartLr: -1 }),
      /warm-up start/,
    );
    assert.throws(() => lr(-1), /step/);
  });
});

describe('constantLr', () => {
  test('the same rate at every step; refuses a rate <= 0', () => {
    const c = constantLr(0.01);
    assert.equal(c(0), 0.01);
    assert.equal(c(1e6), 0.01);
    assert.throws(() => constantLr(0), UsageError);
  });
});
