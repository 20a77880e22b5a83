import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assignTimesteps,
  coefficients,
  makeSchedule,
  parseTimestepMode,
} from '../../src/denoise/schedule.js';
import { UsageError } from '../../src/util/errors.js';

/** The cifar-10 ViT's Linear layers (timm-style names), in forward order. */
function vitNames(depth: number): string[] {
  const names = ['patch_embed.proj'];
  for (let i = 0; i < depth; i++) {
    names.push(
      `blocks.${i}.attn.qkv`,
      `blocks.${i}.attn.proj`,
      `blocks.${i}.mlp.fc1`,
      `blocks.${i}.mlp.fc2`,
    );
  }
  names.push('head');
  return names;
}

describe('schedule', () => {
  test('alphaBar at t = 1 and t = 2 by hand', () => {
    const s = makeSchedule();
    assert.equal(s.betas.length, 1000);
    assert.equal(s.betas[0], 1e-4);
    assert.ok(Math.abs(s.betas[999]! - 2e-3) < 1e-18);
    const beta2 = 1e-4 + (2e-3 - 1e-4) / 999;
    assert.ok(Math.abs(s.betas[1]! - beta2) < 1e-18);
    assert.ok(Math.abs(s.alphaBars[0]! - 0.9999) < 1e-15);
    assert.ok(Math.abs(s.alphaBars[1]! - 0.9999 * (1 - beta2)) < 1e-15);
    // abar is strictly decreasing
    for (let i = 1; i < 1000; i++) assert.ok(s.alphaBars[i]! < s.alphaBars[i - 1]!);
  });

  test('coefficients match the DDPM formulas', () => {
    const s = makeSchedule();
    const c = coefficients(s, 1);
    // t = 1: 1 - abar = beta, so c1 = beta / (sqrt(beta) sqrt(1 - beta)) = sqrt(beta / (1 - beta)).
    assert.ok(Math.abs(c.c1 - Math.sqrt(1e-4 / 0.9999)) < 1e-15);
    assert.ok(Math.abs(c.c2 - 0.01) < 1e-15);
    assert.ok(Math.abs(c.c3 - 1 / Math.sqrt(0.9999)) < 1e-15);
    assert.ok(Math.abs(c.s1 ** 2 + c.s2 ** 2 - 1) < 1e-15);
    assert.ok(Math.abs(c.s2 - 0.01) < 1e-15);
  });

  test('small betas: c1 about 0.002 to 0.007 and c3 - 1 about 1e-4 (METHOD.md)', () => {
    const s = makeSchedule();
    for (let t = 2; t <= 50; t++) {
      const c = coefficients(s, t);
      assert.ok(c.c1 >= 0.002 && c.c1 <= 0.0072, `c1 at t=${t} is ${c.c1}`);
      assert.ok(c.c3 - 1 > 4e-5 && c.c3 - 1 < 1.1e-4, `c3 - 1 at t=${t} is ${c.c3 - 1}`);
    }
    // c1 decreases with t over this range
    assert.ok(coefficients(s, 2).c1 > coefficients(s, 12).c1);
  });

  test('validation names the option', () => {
    const s = makeSchedule({ timesteps: 10 });
    assert.throws(
      () => coefficients(s, 0),
      (e: Error) => e instanceof UsageError && /timestep t/.test(e.message),
    );
    assert.throws(() => coefficients(s, 11), UsageError);
    assert.throws(() => coefficients(s, 1.5), UsageError);
    assert.throws(() => makeSchedule({ betaStart: 0 }), /betaStart/);
    assert.throws(() => makeSchedule({ betaEnd: 1 }), /betaEnd/);
    assert.throws(() => makeSchedule({ betaStart: 3e-3 }), /betaStart .* betaEnd/);
    assert.throws(() => makeSchedule({ timesteps: 0 }), /timesteps/);
  });
});

describe('noise scale', () => {
  test('multiplies every beta; the schedule keeps the scaled betas and the scale', () => {
    const base = makeSchedule();
    const k10 = makeSchedule({ noiseScale: 10 });
    assert.equal(base.noiseScale, 1);
    assert.equal(k10.noiseScale, 10);
    for (const t of [0, 1, 25, 999]) {
      const r = k10.betas[t]! / base.betas[t]!;
      assert.ok(Math.abs(r - 10) < 1e-12, `beta ratio at ${t}: ${r}`);
    }
    assert.equal(k10.betaStart, 1e-4 * 10);
    assert.equal(k10.betaEnd, 2e-3 * 10);
    // Rebuilding from the stored (scaled) betas gives the same schedule without a scale.
    const again = makeSchedule({ betaStart: k10.betaStart, betaEnd: k10.betaEnd });
    assert.deepEqual(again.alphaBars, k10.alphaBars);
  });

  test('more noise at every step: s2 and c1 grow about as √k at the layers’ small t', () => {
    const base = makeSchedule();
    for (const k of [3, 10, 100]) {
      const s = makeSchedule({ noiseScale: k });
      for (const t of [1, 3, 26]) {
        const a = coefficients(base, t);
        const b = coefficients(s, t);
        assert.ok(b.s2 > a.s2 && b.c1 > a.c1 && b.s1 < a.s1, `k=${k} t=${t}`);
        // 1 − abar_t ≈ k Σβ while kΣβ is small (not at k = 100, t = 26: 0.31), so s2 ∝ √k;
        // c1 = β/(s2√α) ∝ √k as well.
        if (k * t > 300) continue;
        assert.ok(Math.abs(b.s2 / a.s2 / Math.sqrt(k) - 1) < 0.05, `s2 ratio k=${k} t=${t}`);
        assert.ok(Math.abs(b.c1 / a.c1 / Math.sqrt(k) - 1) < 0.05, `c1 ratio k=${k} t=${t}`);
      }
    }
  });

  test('a scale that pushes a beta to 1 or a non-positive scale is refused', () => {
    assert.throws(() => makeSchedule({ noiseScale: 500 }), /betaEnd .* noise scale 500/);
    assert.throws(() => makeSchedule({ noiseScale: 0 }), /noise scale/);
    assert.throws(() => makeSchedule({ noiseScale: Number.NaN }), /noise scale/);
  });
});

describe('assignTimesteps', () => {
  const names = vitNames(3); // N = 14
  const N = names.length;

  test('paper: N..1 in forward order', () => {
    const m = assignTimesteps(names, 'paper');
    assert.deepEqual([...m.keys()], names);
    assert.deepEqual(
      [...m.values()],
      names.map((_, l) => N - l),
    );
    assert.equal(m.get('head'), 1);
    assert.equal(m.get('patch_embed.proj'), N);
  });

  test('public-code: METHOD.md pattern on the ViT', () => {
    const m = assignTimesteps(names, 'public-code');
    for (const name of names) {
      const expected = /attn\.proj$|mlp\.fc2$/.test(name) ? N - 1 : N;
      assert.equal(m.get(name), expected, name);
    }
  });

  test('public-code: decrements at an ancestor level reach later subtrees', () => {
    // 'fc0' is converted at the root before the call into 'blocks', which receives N - 1;
    // 'blocks.0.b' is the second converted child of 'blocks.0'; 'head' is the root's second.
    const m = assignTimesteps(
      ['fc0', 'blocks.0.a', 'blocks.0.b', 'blocks.1.a', 'head'],
      'public-code',
    );
    assert.deepEqual(Object.fromEntries(m), {
      fc0: 5,
      'blocks.0.a': 4,
      'blocks.0.b': 3,
      'blocks.1.a': 4,
      head: 4,
    });
    assert.throws(() => assignTimesteps(['a', 'a.b'], 'public-code'), /inside selected layer 'a'/);
  });

  test('linear spread: from first to last, rounded; N..1 is the paper', () => {
    assert.deepEqual(
      [...assignTimesteps(names, { spread: 'linear', first: N, last: 1 }).values()],
      [...assignTimesteps(names, 'paper').values()],
    );
    // 100 + (1 − 100)·l/3 for l = 0..3: 100, 67, 34, 1.
    const m = assignTimesteps(['a', 'b', 'c', 'd'], { spread: 'linear', first: 100, last: 1 });
    assert.deepEqual([...m.values()], [100, 67, 34, 1]);
    assert.deepEqual(
      [...assignTimesteps(['a'], { spread: 'linear', first: 9, last: 2 }).values()],
      [9],
    );
    assert.throws(
      () => assignTimesteps(['a', 'b'], { spread: 'linear', first: 2000, last: 1 }),
      /first must be an integer in 1..1000/,
    );
  });

  test('parseTimestepMode reads paper, public-code and linear:first:last', () => {
    assert.equal(parseTimestepMode('paper'), 'paper');
    assert.equal(parseTimestepMode('public-code'), 'public-code');
    assert.deepEqual(parseTimestepMode('linear:50:2'), { spread: 'linear', first: 50, last: 2 });
    assert.throws(
      () => parseTimestepMode('linear:50'),
      (e: Error) => e instanceof UsageError && /--timesteps/.test(e.message),
    );
  });

  test('custom mapping is validated per layer', () => {
    const m = assignTimesteps(['a', 'b'], { a: 7, b: 1 }, 10);
    assert.equal(m.get('a'), 7);
    assert.throws(
      () => assignTimesteps(['a', 'b'], { a: 7 }),
      (e: Error) => e instanceof UsageError && /'b'/.test(e.message),
    );
    assert.throws(() => assignTimesteps(['a'], { a: 11 }, 10), /layer 'a'/);
    assert.throws(() => assignTimesteps(['a'], { a: 0 }), /layer 'a'/);
    assert.throws(() => assignTimesteps(['a'], { a: 1, c: 2 }), /'c'/);
    assert.throws(() => assignTimesteps(['a', 'a'], 'paper'), /twice/);
    // More layers than timesteps
    assert.throws(() => assignTimesteps(['a', 'b', 'c'], 'paper', 2), /layer 'a'/);
  });
});
