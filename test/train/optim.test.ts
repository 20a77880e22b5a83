// Optimisers and schedules against their update formulas written out independently.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdamW, clipGradNorm, defaultDecayGroups, SGD } from '../../src/train/optim.js';
import { ParamStore } from '../../src/train/params.js';
import { cosineWithWarmup } from '../../src/train/schedule.js';

const w0 = [0.5, -1.0, 2.0];
const gradsAt = (k: number) => [0.1 * (k + 1), -0.2, 0.3 / (k + 1)];

function store(): ParamStore {
  const s = new ParamStore();
  s.set('w', [3], Float32Array.from(w0));
  s.set('b.bias', [3], Float32Array.from(w0));
  return s;
}

const f32 = (x: number) => Math.fround(x);

describe('SGD', () => {
  for (const nesterov of [false, true]) {
    test(`momentum 0.9, weight decay 0.1, nesterov ${nesterov}: 4 steps`, () => {
      const s = store();
      const opt = new SGD(s, [{ name: 'all', params: ['w'], weightDecay: 0.1 }], {
        momentum: 0.9,
        nesterov,
      });
      // Reference: PyTorch's algorithm, per element, in float32 like the stored values.
      const w = [...w0];
      const buf = [0, 0, 0];
      for (let k = 0; k < 4; k++) {
        const g = gradsAt(k);
        for (let i = 0; i < 3; i++) {
          const d = f32(g[i]!) + 0.1 * w[i]!;
          buf[i] = f32(k === 0 ? d : 0.9 * buf[i]! + d);
          const upd = nesterov ? d + 0.9 * buf[i]! : buf[i]!;
          w[i] = f32(w[i]! - 0.05 * upd);
        }
        opt.step(new Map([['w', Float32Array.from(g)]]), 0.05);
      }
      assert.deepEqual(Array.from(s.get('w').data), w);
    });
  }
});

describe('AdamW', () => {
  test('5 steps match the decoupled-decay formula; frozen group untouched', () => {
    const s = store();
    const opt = new AdamW(s, [
      { name: 'main', params: ['w'], weightDecay: 0.01 },
      { name: 'other', params: ['b.bias'], frozen: true },
    ]);
    const w = [...w0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let t = 1; t <= 5; t++) {
      const g = gradsAt(t - 1).map(f32);
      for (let i = 0; i < 3; i++) {
        m[i] = f32(0.9 * m[i]! + 0.1 * g[i]!);
        v[i] = f32(0.999 * v[i]! + 0.001 * g[i]! * g[i]!);
        const mhat = m[i]! / (1 - 0.9 ** t);
        const vhat = v[i]! / (1 - 0.999 ** t);
        w[i] = f32(w[i]! * (1 - 1e-3 * 0.01) - (1e-3 * mhat) / (Math.sqrt(vhat) + 1e-8));
      }
      opt.step(
        new Map([
          ['w', Float32Array.from(g)],
          ['b.bias', Float32Array.from(g)],
        ]),
        1e-3,
      );
    }
    const got = Array.from(s.get('w').data);
    for (let i = 0; i < 3; i++)
      assert.ok(
        Math.abs(got[i]! - w[i]!) <= 2e-7 * Math.abs(w[i]!),
        `w[${i}] ${got[i]} vs ${w[i]}`,
      );
    assert.deepEqual(Array.from(s.get('b.bias').data), w0.map(f32));
  });

  test('state()/loadState() resumes bit-identically', () => {
    const run = (split: boolean) => {
      const s = store();
      let opt = new AdamW(s, [{ name: 'all', params: ['w'], weightDecay: 0.05 }]);
      for (let k = 0; k < 6; k++) {
        if (split && k === 3) {
          const st = JSON.parse(JSON.stringify(opt.state()));
          opt = new AdamW(s, [{ name: 'all', params: ['w'], weightDecay: 0.05 }]);
          opt.loadState(st);
        }
        opt.step(new Map([['w', Float32Array.from(gradsAt(k))]]), 0.01);
      }
      return Array.from(s.get('w').data);
    };
    assert.deepEqual(run(true), run(false));
  });

  test('a gradient of the wrong length names the parameter', () => {
    const opt = new AdamW(store(), [{ name: 'all', params: ['w'] }]);
    assert.throws(() => opt.step(new Map([['w', new Float32Array(2)]]), 0.1), /'w'.*2 values.*3/);
  });
});

describe('groups, clipping, schedule', () => {
  test('default decay groups exclude biases, norms, tokens and denoiser embeddings', () => {
    const names = [
      'blocks.0.attn.qkv.weight',
      'blocks.0.attn.qkv.bias',
      'blocks.0.norm1.weight',
      'cls_token',
      'pos_embed',
      'bn1.weight',
      'fc.weight',
      'x.denoise.embed',
      'x.denoise.weight',
    ];
    const [decay, none] = defaultDecayGroups(names, 0.05);
    assert.deepEqual(decay!.params, ['blocks.0.attn.qkv.weight', 'fc.weight', 'x.denoise.weight']);
    assert.equal(none!.params.length, 6);
  });

  test('clipGradNorm: norm of (3, 4) is 5, scaled to 1', () => {
    const g = new Map([
      ['a', Float32Array.from([3])],
      ['b', Float32Array.from([4])],
    ]);
    assert.equal(clipGradNorm(g, 1), 5);
    assert.ok(Math.abs(g.get('a')![0]! - 3 / (5 + 1e-6)) < 1e-7);
    assert.ok(Math.abs(g.get('b')![0]! - 4 / (5 + 1e-6)) < 1e-7);
    const h = new Map([['a', Float32Array.from([0.3])]]);
    clipGradNorm(h, 1);
    assert.equal(h.get('a')![0], Math.fround(0.3));
  });

  test('cosine with warm-up: 0 at step 0, base at end of warm-up, midpoint, min at end', () => {
    const lr = cosineWithWarmup({ baseLr: 1e-3, minLr: 1e-5, warmupSteps: 10, totalSteps: 110 });
    assert.equal(lr(0), 0);
    assert.ok(Math.abs(lr(5) - 5e-4) < 1e-15);
    assert.equal(lr(10), 1e-3);
    assert.ok(Math.abs(lr(60) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-15);
    assert.ok(Math.abs(lr(110) - 1e-5) < 1e-15);
    assert.throws(() => cosineWithWarmup({ baseLr: -1, totalSteps: 10 }), /--lr/);
  });
});
