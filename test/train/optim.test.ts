// Optimisers against their update formulas written out independently (scalar loops), and
// against numbers printed by PyTorch 1.13 (torch.optim.SGD / AdamW, clip_grad_norm_) on the
// same inputs, run by hand once; the tests themselves never call Python.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelError, UsageError } from '../../src/util/errors.js';
import { AdamW, clipGradNorm, type OptimizerState, SGD } from '../../src/train/optim.js';
import { ParamStore } from '../../src/models/params.js';
import { defaultDecayGroups, type ParamGroup } from '../../src/train/params.js';

const w0 = [0.5, -1.0, 2.0];
/** The gradient of step k (0-based), rounded to float32 as the optimiser will see it. */
const gradsAt = (k: number) => [0.1 * (k + 1), -0.2, 0.3 / (k + 1)].map(Math.fround);
const f32 = Math.fround;

function store(...names: string[]): ParamStore {
  const s = new ParamStore();
  for (const n of names) s.set(n, [3], Float32Array.from(w0));
  return s;
}

/** Within a relative `tol` element by element (float64 vs float32 operation order). */
function near(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i]! - want[i]!) <= tol * Math.max(1, Math.abs(want[i]!)),
      `[${i}] ${got[i]} vs ${want[i]}`,
    );
  }
}

/** PyTorch's SGD for one parameter, per element; values stored in float32. */
function sgdReference(steps: number, lr: number, mu: number, wd: number, nesterov: boolean) {
  const w = [...w0].map(f32);
  const buf: number[] = [];
  for (let k = 0; k < steps; k++) {
    const g = gradsAt(k);
    for (let i = 0; i < 3; i++) {
      let d = g[i]! + wd * w[i]!;
      if (mu > 0) {
        buf[i] = f32(k === 0 ? d : mu * buf[i]! + d);
        d = nesterov ? d + mu * buf[i]! : buf[i]!;
      }
      w[i] = f32(w[i]! - lr * d);
    }
  }
  return w;
}

/** PyTorch's AdamW for one parameter, per element; values stored in float32. */
function adamwReference(
  steps: number,
  lr: number,
  wd: number,
  [b1, b2]: [number, number] = [0.9, 0.999],
  eps = 1e-8,
) {
  const w = [...w0].map(f32);
  const m = [0, 0, 0];
  const v = [0, 0, 0];
  for (let t = 1; t <= steps; t++) {
    const g = gradsAt(t - 1);
    for (let i = 0; i < 3; i++) {
      const decayed = w[i]! * (1 - lr * wd);
      m[i] = f32(b1 * m[i]! + (1 - b1) * g[i]!);
      v[i] = f32(b2 * v[i]! + (1 - b2) * g[i]! * g[i]!);
      const mHat = m[i]! / (1 - b1 ** t);
      const vHat = v[i]! / (1 - b2 ** t);
      w[i] = f32(decayed - (lr * mHat) / (Math.sqrt(vHat) + eps));
    }
  }
  return w;
}

function runSgd(steps: number, mu: number, nesterov: boolean) {
  const s = store('w');
  const opt = new SGD(s, [{ name: 'all', params: ['w'], weightDecay: 0.1 }], {
    momentum: mu,
    nesterov,
  });
  for (let k = 0; k < steps; k++) opt.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.05);
  return s.get('w').data;
}

describe('SGD', () => {
  // PyTorch 1.13, float32, lr 0.05, weight_decay 0.1, the gradients of gradsAt, 4 steps.
  const torch = {
    plain: [0.44032415747642517, -0.940448522567749, 1.9293726682662964],
    momentum: [0.3852447271347046, -0.8652997612953186, 1.8258823156356812],
    nesterov: [0.33784157037734985, -0.8203989863395691, 1.7743669748306274],
  };

  test('no momentum: w <- w - lr (g + wd w)', () => {
    const got = runSgd(4, 0, false);
    near(got, sgdReference(4, 0.05, 0, 0.1, false));
    near(got, torch.plain);
  });

  test('momentum 0.9 (buffer = d at the first step, then mu b + d)', () => {
    const got = runSgd(4, 0.9, false);
    near(got, sgdReference(4, 0.05, 0.9, 0.1, false));
    near(got, torch.momentum);
  });

  test('Nesterov momentum 0.9: step along d + mu b', () => {
    const got = runSgd(4, 0.9, true);
    near(got, sgdReference(4, 0.05, 0.9, 0.1, true));
    near(got, torch.nesterov);
    // A first step by hand, element 0: d = 0.1 + 0.1 * 0.5 = 0.15, b = 0.15,
    // w = 0.5 - 0.05 * (0.15 + 0.9 * 0.15) = 0.48575.
    near(runSgd(1, 0.9, true).subarray(0, 1), [0.48575]);
  });

  test('weight decay only in the decay group; the group lr multiplier scales the step', () => {
    const s = store('fc.weight', 'fc.bias');
    const groups = defaultDecayGroups(['fc.weight', 'fc.bias'], 0.1);
    groups[1]!.lr = 0.5;
    const opt = new SGD(s, groups);
    const g = Float32Array.from([1, 1, 1]);
    opt.step(
      new Map([
        ['fc.weight', g],
        ['fc.bias', g],
      ]),
      0.1,
    );
    // weight: w - 0.1 (1 + 0.1 w); bias: w - 0.05 * 1 (no decay, half rate).
    near(
      s.get('fc.weight').data,
      w0.map((w) => w - 0.1 * (1 + 0.1 * w)),
    );
    near(
      s.get('fc.bias').data,
      w0.map((w) => w - 0.05),
    );
  });

  test('bad options are UsageErrors', () => {
    const grp = [{ name: 'all', params: ['w'] }];
    assert.throws(() => new SGD(store('w'), grp, { nesterov: true }), UsageError);
    assert.throws(() => new SGD(store('w'), grp, { momentum: -1 }), UsageError);
    assert.throws(
      () => new SGD(store('w'), [{ name: 'a', params: ['w'], weightDecay: -0.1 }]),
      /weightDecay/,
    );
    assert.throws(() => new SGD(store('w'), grp).step(new Map(), Number.NaN), UsageError);
  });
});

describe('AdamW', () => {
  test('5 steps match the decoupled-decay formula and PyTorch; frozen group untouched', () => {
    const s = store('w', 'b.bias');
    const opt = new AdamW(s, [
      { name: 'main', params: ['w'], weightDecay: 0.01 },
      { name: 'other', params: ['b.bias'], frozen: true },
    ]);
    for (let k = 0; k < 5; k++) {
      const g = Float32Array.from(gradsAt(k));
      opt.step(
        new Map([
          ['w', g],
          ['b.bias', g],
        ]),
        1e-3,
      );
    }
    near(s.get('w').data, adamwReference(5, 1e-3, 0.01));
    // PyTorch 1.13: AdamW(lr=1e-3, weight_decay=0.01), 5 steps.
    near(s.get('w').data, [0.4951242506504059, -0.9949501156806946, 1.9954982995986938]);
    assert.deepEqual(Array.from(s.get('b.bias').data), w0);
    assert.deepEqual(opt.state().buffers['b.bias'], undefined);
  });

  test('other betas, eps and a large decay (PyTorch: betas (0.8, 0.99), eps 1e-3, wd 0.5)', () => {
    const s = store('w');
    const opt = new AdamW(s, [{ name: 'all', params: ['w'], weightDecay: 0.5 }], {
      betas: [0.8, 0.99],
      eps: 1e-3,
    });
    for (let k = 0; k < 5; k++) opt.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.1);
    near(s.get('w').data, adamwReference(5, 0.1, 0.5, [0.8, 0.99], 1e-3));
    near(s.get('w').data, [-0.06477168202400208, -0.3235936164855957, 1.1698607206344604]);
  });

  test("bias correction counts each parameter's own updates (PyTorch's per-parameter step)", () => {
    // 'b' has no gradient at the first step. Its first update then has t = 1, where
    // m̂ = g and v̂ = g², so it moves by lr · g / (|g| + eps) ≈ lr · sign(g) — not by the
    // t = 2 value lr · (0.1 g / 0.19) / (√(0.001 g² / 0.001999) + eps) ≈ 0.744 lr · sign(g).
    const s = store('a', 'b');
    const opt = new AdamW(s, [{ name: 'all', params: ['a', 'b'] }]);
    const g = Float32Array.from([0.5, -2, 4]);
    opt.step(new Map([['a', g]]), 0.01);
    opt.step(
      new Map([
        ['a', g],
        ['b', g],
      ]),
      0.01,
    );
    near(
      s.get('b').data,
      w0.map((w, i) => w - (0.01 * g[i]!) / (Math.abs(g[i]!) + 1e-8)),
    );
    assert.deepEqual(opt.state().steps, { a: 2, b: 1 });
  });

  test('setFrozen freezes and unfreezes a group between steps', () => {
    const s = store('x', 'y');
    const groups: ParamGroup[] = [
      { name: 'first', params: ['x'] },
      { name: 'second', params: ['y'] },
    ];
    const opt = new AdamW(s, groups);
    const grads = new Map([
      ['x', Float32Array.from([1, 1, 1])],
      ['y', Float32Array.from([1, 1, 1])],
    ]);
    opt.setFrozen('second', true);
    assert.equal(opt.isFrozen('second'), true);
    assert.equal(groups[1]!.frozen, undefined, "the caller's group objects are not edited");
    opt.step(grads, 0.1);
    assert.deepEqual(Array.from(s.get('y').data), w0);
    near(
      s.get('x').data,
      w0.map((w) => w - 0.1),
    );
    opt.setFrozen('second', false);
    opt.step(grads, 0.1);
    // y's first update (t = 1) is lr · sign(g); x's second one also moves by lr because
    // with a constant gradient m̂ = g and v̂ = g² at every t.
    near(
      s.get('y').data,
      w0.map((w) => w - 0.1),
    );
    near(
      s.get('x').data,
      w0.map((w) => w - 0.2),
    );
    assert.throws(() => opt.setFrozen('third', true), /no parameter group 'third'.*first, second/);
  });

  test('a gradient of the wrong length names the parameter and changes nothing', () => {
    const s = store('a', 'w');
    const opt = new AdamW(s, [{ name: 'all', params: ['a', 'w'] }]);
    assert.throws(
      () =>
        opt.step(
          new Map([
            ['a', Float32Array.from([1, 1, 1])],
            ['w', new Float32Array(2)],
          ]),
          0.1,
        ),
      (e: unknown) => e instanceof ModelError && /'w'.*2 values.*3/.test(e.message),
    );
    assert.deepEqual(Array.from(s.get('a').data), w0);
    assert.equal(opt.state().step, 0);
  });

  test('groups are checked: unknown parameter, a parameter in two groups, duplicate names', () => {
    assert.throws(() => new AdamW(store('w'), [{ name: 'g', params: ['v'] }]), ModelError);
    assert.throws(
      () =>
        new AdamW(store('w'), [
          { name: 'g', params: ['w'] },
          { name: 'h', params: ['w'] },
        ]),
      /'w' is in two/,
    );
    assert.throws(
      () =>
        new AdamW(store('w'), [
          { name: 'g', params: ['w'] },
          { name: 'g', params: [] },
        ]),
      /two optimiser groups named 'g'/,
    );
    assert.throws(() => new AdamW(store('w'), [], { betas: [1, 0.999] }), /beta1/);
  });
});

describe('state() / loadState()', () => {
  // A run with a frozen phase and a parameter that sometimes has no gradient, so that the
  // per-parameter step counts differ from the global one.
  const groups = (): ParamGroup[] => [
    { name: 'decay', params: ['w'], weightDecay: 0.05 },
    { name: 'no_decay', params: ['b.bias'] },
  ];
  function gradsOf(k: number) {
    const m = new Map([['w', Float32Array.from(gradsAt(k))]]);
    if (k % 3 !== 1) m.set('b.bias', Float32Array.from(gradsAt(k + 7)));
    return m;
  }
  type Make = (s: ParamStore) => AdamW | SGD;
  const makers: [string, Make][] = [
    ['AdamW', (s) => new AdamW(s, groups())],
    ['SGD Nesterov', (s) => new SGD(s, groups(), { momentum: 0.9, nesterov: true })],
  ];
  for (const [label, make] of makers) {
    test(`${label}: stop after 4 of 9 steps, resume from JSON, same bits`, () => {
      const run = (split: boolean) => {
        let s = store('w', 'b.bias');
        let opt = make(s);
        for (let k = 0; k < 9; k++) {
          if (split && k === 4) {
            // A new process: weights reloaded (copied), optimiser rebuilt from its JSON state.
            const st = JSON.parse(JSON.stringify(opt.state())) as OptimizerState;
            s = s.clone();
            opt = make(s);
            opt.loadState(st);
          }
          opt.setFrozen('no_decay', k === 2 || k === 3);
          opt.step(gradsOf(k), 0.01 * (1 + (k % 2)));
        }
        return s;
      };
      const a = run(false);
      const b = run(true);
      for (const n of ['w', 'b.bias'])
        assert.deepEqual(
          new Uint32Array(b.get(n).data.buffer),
          new Uint32Array(a.get(n).data.buffer),
        );
    });
  }

  test('a state without per-parameter counts uses the global step for each parameter', () => {
    const make = (s: ParamStore) => new AdamW(s, [{ name: 'all', params: ['w'] }]);
    const s1 = store('w');
    const full = make(s1);
    for (let k = 0; k < 6; k++) full.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.01);
    const s2 = store('w');
    const first = make(s2);
    for (let k = 0; k < 3; k++) first.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.01);
    const { steps, ...old } = first.state();
    assert.deepEqual(steps, { w: 3 });
    const resumed = make(s2);
    resumed.loadState(old);
    for (let k = 3; k < 6; k++) resumed.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.01);
    assert.deepEqual(Array.from(s2.get('w').data), Array.from(s1.get('w').data));
  });

  test('loadState refuses another optimiser, unknown parameters and wrong buffer sizes', () => {
    const opt = new AdamW(store('w'), [{ name: 'all', params: ['w'] }]);
    assert.throws(() => opt.loadState({ kind: 'sgd', step: 1, buffers: {} }), UsageError);
    assert.throws(
      () =>
        opt.loadState({
          kind: 'adamw',
          step: 1,
          buffers: {
            v: [
              [0, 0, 0],
              [0, 0, 0],
            ],
          },
        }),
      /'v'/,
    );
    assert.throws(
      () =>
        opt.loadState({
          kind: 'adamw',
          step: 1,
          buffers: {
            w: [
              [0, 0],
              [0, 0],
            ],
          },
        }),
      (e: unknown) => e instanceof ModelError && /'w'/.test(e.message),
    );
  });
});

describe('clipGradNorm', () => {
  test('global norm over all arrays; scaled by maxNorm / (norm + 1e-6)', () => {
    // ‖(1, 2, 2)‖ = 3 over two arrays; factor 1.5 / 3.000001.
    const g = new Map([
      ['a', Float32Array.from([1, 2])],
      ['b', Float32Array.from([2])],
    ]);
    assert.equal(clipGradNorm(g, 1.5), 3);
    const f = 1.5 / (3 + 1e-6);
    near(g.get('a')!, [f, 2 * f], 1e-7);
    near(g.get('b')!, [2 * f], 1e-7);
    // PyTorch 1.13 clip_grad_norm_ on the same gradients: 3.0, a = (0.49999982, 0.99999964).
    near(g.get('a')!, [0.4999998211860657, 0.9999996423721313], 1e-7);
  });

  test('below the limit nothing changes; a bad limit is a UsageError', () => {
    const h = new Map([['a', Float32Array.from([0.3, -0.4])]]);
    assert.ok(Math.abs(clipGradNorm(h, 1) - 0.5) < 1e-7);
    assert.deepEqual(Array.from(h.get('a')!), [f32(0.3), f32(-0.4)]);
    assert.throws(() => clipGradNorm(h, 0), UsageError);
  });
});
