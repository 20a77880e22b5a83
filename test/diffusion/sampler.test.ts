// The samplers: exact on a distribution whose noise predictor is known in closed form,
// equal to a hand-written DDIM recursion on a tiny U-Net, and seeded.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ddimSteps,
  sampleImages,
  sessionPredictor,
  type NoisePredictor,
} from '../../src/diffusion/sampler.js';
import { ddpmSchedule } from '../../src/diffusion/schedule.js';
import { getDiffusionPreset } from '../../src/models/registry.js';
import { unetInitialWeights, unetModel } from '../../src/models/unet-graph.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const schedule = ddpmSchedule();
const ab = (t: number) => (t === 0 ? 1 : schedule.alphaBars[t - 1]!);

/**
 * The exact noise predictor of data that is always the image `c`: x_t = sqrt(abar) c +
 * sqrt(1 − abar) eps, so eps = (x_t − sqrt(abar) c) / sqrt(1 − abar).
 */
function pointMass(c: Float32Array): NoisePredictor {
  return (xt, t, n) => {
    const out = new Float32Array(xt.length);
    const per = c.length;
    for (let i = 0; i < n * per; i++) {
      out[i] = (xt[i]! - Math.sqrt(ab(t)) * c[i % per]!) / Math.sqrt(1 - ab(t));
    }
    return Promise.resolve(out);
  };
}

describe('samplers on a point mass (exact predictor)', () => {
  const c = Float32Array.from([0.5, -0.25, 0.9, -1]);
  for (const [name, opts] of [
    ['DDIM, 50 steps, eta 0', { method: 'ddim', steps: 50 }],
    ['DDIM, 7 steps, eta 1', { method: 'ddim', steps: 7, eta: 1 }],
    ['DDPM, 1000 steps', { method: 'ddpm' }],
    ['DDPM, 1000 steps, small variance', { method: 'ddpm', variance: 'small' }],
  ] as const) {
    test(`${name} returns the point`, async () => {
      const x = await sampleImages(pointMass(c), [1, 2, 2], schedule, { n: 3, seed: 4, ...opts });
      for (let i = 0; i < x.length; i++) {
        assert.ok(Math.abs(x[i]! - c[i % 4]!) < 1e-5, `${name}: [${i}] ${x[i]} vs ${c[i % 4]}`);
      }
    });
  }
});

describe('DDIM with eta 0 on a tiny U-Net', () => {
  test('equals the recursion x_prev = sqrt(abar_prev) x0 + sqrt(1 − abar_prev) e, written out', async () => {
    const def = getDiffusionPreset('ddpm-unet-micro');
    const model = unetModel(def, unetInitialWeights(def, 7));
    const p = await sessionPredictor(model, 1);
    const got = await sampleImages(p.predict, [1, 8, 8], schedule, {
      n: 2,
      method: 'ddim',
      steps: 4,
      seed: 11,
      clip: false,
    });
    await p.release();
    // By hand: steps 1, 251, 501, 751 (1 + floor(i·1000/4)); x_T from the per-image streams.
    assert.deepEqual(ddimSteps(1000, 4), [1, 251, 501, 751]);
    const root = new Rng(11);
    let x = new Float64Array(128);
    for (let i = 0; i < 2; i++) {
      const z = root.fork(`image-${i}`).fillNormal(new Float32Array(64));
      x.set(z, i * 64);
    }
    const s = await Session.create(model, { threads: 1 });
    const seq = [751, 501, 251, 1];
    for (let k = 0; k < seq.length; k++) {
      const t = seq[k]!;
      const prev = seq[k + 1] ?? 0;
      const out = await s.run({
        input: float32([2, 1, 8, 8], Float32Array.from(x)),
        timestep: float32([2], [t - 1, t - 1]),
      });
      const e = out.eps!.data as Float32Array;
      const next = new Float64Array(128);
      for (let i = 0; i < 128; i++) {
        const xf = Math.fround(x[i]!);
        const x0 = (xf - Math.sqrt(1 - ab(t)) * e[i]!) / Math.sqrt(ab(t));
        next[i] = Math.sqrt(ab(prev)) * x0 + Math.sqrt(1 - ab(prev)) * e[i]!;
      }
      x = next;
    }
    await s.release();
    for (let i = 0; i < 128; i++) {
      assert.ok(
        Math.abs(got[i]! - x[i]!) < 1e-4 * Math.max(1, Math.abs(x[i]!)),
        `[${i}] ${got[i]} vs ${x[i]}`,
      );
    }
  });
});

describe('seeding', () => {
  // A predictor that ignores its input: the samples depend only on the seeded draws.
  const zero: NoisePredictor = (xt) => Promise.resolve(new Float32Array(xt.length));
  const opts = { method: 'ddpm', clip: false } as const;

  test('same seed, same images; another seed, other images; independent of the batch size', async () => {
    const a = await sampleImages(zero, [1, 3, 3], schedule, {
      ...opts,
      n: 5,
      seed: 1,
      batchSize: 5,
    });
    const b = await sampleImages(zero, [1, 3, 3], schedule, {
      ...opts,
      n: 5,
      seed: 1,
      batchSize: 2,
    });
    const c = await sampleImages(zero, [1, 3, 3], schedule, {
      ...opts,
      n: 5,
      seed: 2,
      batchSize: 5,
    });
    assert.deepEqual(Array.from(a), Array.from(b));
    assert.ok(a.some((v, i) => v !== c[i]));
    // Image 0 of a 5-image draw is the single image of a 1-image draw with that seed.
    const one = await sampleImages(zero, [1, 3, 3], schedule, { ...opts, n: 1, seed: 1 });
    assert.deepEqual(Array.from(one), Array.from(a.subarray(0, 9)));
  });

  test('DDIM eta 0 is deterministic given x_T; eta 1 adds noise', async () => {
    const c = Float32Array.from([0.1]);
    const noisy: NoisePredictor = async (xt, t, n) => {
      const e = await pointMass(c)(xt, t, n);
      return e.map((v) => 0.9 * v); // an imperfect predictor, so the paths differ
    };
    const d0 = await sampleImages(noisy, [1, 1, 1], schedule, {
      method: 'ddim',
      steps: 20,
      n: 4,
      seed: 3,
    });
    const d0b = await sampleImages(noisy, [1, 1, 1], schedule, {
      method: 'ddim',
      steps: 20,
      n: 4,
      seed: 3,
    });
    const d1 = await sampleImages(noisy, [1, 1, 1], schedule, {
      method: 'ddim',
      steps: 20,
      eta: 1,
      n: 4,
      seed: 3,
    });
    assert.deepEqual(Array.from(d0), Array.from(d0b));
    assert.ok(d0.some((v, i) => Math.abs(v - d1[i]!) > 1e-6));
  });

  test('bad requests are usage errors', async () => {
    await assert.rejects(
      sampleImages(zero, [1, 1, 1], schedule, { method: 'ddpm', steps: 50, n: 1, seed: 0 }),
      (e: unknown) => e instanceof UsageError && /use --method ddim/.test(e.message),
    );
    await assert.rejects(
      sampleImages(zero, [1, 1, 1], schedule, { method: 'ddim', steps: 0, n: 1, seed: 0 }),
      /--steps must be an integer in 1..1000/,
    );
    assert.deepEqual(ddimSteps(10, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});
