// The DDPM objective: the schedule's values, the feeds (x_t from the drawn t and eps),
// and the loss graph equal to mean (eps_θ(x_t, t) − eps)² computed from the U-Net's output.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ddpmFeeds, ddpmTrainingGraph, NOISE_NAME } from '../../src/diffusion/objective.js';
import { ddpmSchedule, noiseBatch, timestepInput } from '../../src/diffusion/schedule.js';
import { getDiffusionPreset } from '../../src/models/registry.js';
import { unetInitialWeights, unetModel } from '../../src/models/unet-graph.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

describe('DDPM schedule and feeds', () => {
  test('linear betas 1e-4 .. 0.02 over 1000 steps', () => {
    const s = ddpmSchedule();
    assert.equal(s.timesteps, 1000);
    assert.ok(Math.abs(s.betas[0]! - 1e-4) < 1e-15 && Math.abs(s.betas[999]! - 0.02) < 1e-15);
    // abar_T = Π (1 − beta_t) ≈ 4.04e-5 (the value DDPM's schedule is known for).
    assert.ok(Math.abs(s.alphaBars[999]! - 4.035e-5) < 1e-7, `${s.alphaBars[999]}`);
  });

  test('x_t = sqrt(abar_t) (2 px − 1) + sqrt(1 − abar_t) eps with the fed t and eps', () => {
    const s = ddpmSchedule();
    const rng = new Rng(1);
    const px = new Float32Array(3 * 4).map(() => rng.uniform());
    const feeds = ddpmFeeds(px, [3, 1, 2, 2], s, new Rng(9));
    const xt = feeds.input!.data as Float32Array;
    const eps = feeds[NOISE_NAME]!.data as Float32Array;
    const tIn = feeds.timestep!.data as Float32Array;
    for (let i = 0; i < 3; i++) {
      const t = tIn[i]! + 1;
      assert.ok(Number.isInteger(t) && t >= 1 && t <= 1000);
      const ab = s.alphaBars[t - 1]!;
      for (let k = 0; k < 4; k++) {
        const want = Math.sqrt(ab) * (2 * px[i * 4 + k]! - 1) + Math.sqrt(1 - ab) * eps[i * 4 + k]!;
        assert.ok(Math.abs(xt[i * 4 + k]! - want) < 1e-6);
      }
    }
    // Seeded: the same stream gives the same feeds.
    assert.deepEqual(ddpmFeeds(px, [3, 1, 2, 2], s, new Rng(9)).input!.data, feeds.input!.data);
    // t = 0 leaves the image clean.
    const clean = noiseBatch(Float32Array.from([0.5, -1]), [0], s, new Rng(0));
    assert.deepEqual(Array.from(clean.xt), [0.5, -1]);
    assert.equal(timestepInput(0), 0);
    assert.equal(timestepInput(1), 0);
    assert.equal(timestepInput(1000), 999);
  });

  test('the loss graph is the mean squared error of the predicted noise', async () => {
    const def = getDiffusionPreset('ddpm-unet-micro');
    const store = unetInitialWeights(def, 4);
    const g = ddpmTrainingGraph(def, 4);
    const feeds = ddpmFeeds(
      new Float32Array(2 * 64).map((_, i) => (i % 7) / 7),
      [2, 1, 8, 8],
      ddpmSchedule(),
      new Rng(2),
    );
    const ls = await Session.create(g.b.build().model, { threads: 1 });
    const loss = Number((await ls.run(feeds)).loss!.data[0]);
    await ls.release();
    const es = await Session.create(unetModel(def, store), { threads: 1 });
    const eps = (await es.run({ input: feeds.input!, timestep: feeds.timestep! })).eps!
      .data as Float32Array;
    await es.release();
    const noise = feeds[NOISE_NAME]!.data as Float32Array;
    let mse = 0;
    for (let i = 0; i < noise.length; i++) mse += (eps[i]! - noise[i]!) ** 2;
    mse /= noise.length;
    assert.ok(Math.abs(loss - mse) < 1e-5 * mse, `${loss} vs ${mse}`);
  });
});
