// The training loop's guarantees: training stops at the first non-finite value naming
// step and parameter, a resume refuses changed hyper-parameters, and a new objective is a
// graph and a feeds function that resumes inside an epoch. (Kills: kill.e2e.test.ts.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { NonFiniteError, ResumeMismatchError } from '../../src/util/errors.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { trainSupervised } from '../../src/train/loop.js';
import { epochBatches } from '../../src/data/samplers.js';
import { ParamStore } from '../../src/models/params.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { float32 } from '../../src/onnx/tensor.js';
import { graphObjective } from '../../src/train/objective.js';
import { AdamW } from '../../src/train/optim.js';
import { runTraining } from '../../src/train/run.js';
import { constantLr } from '../../src/train/schedule.js';
import { separateStreams } from '../../src/train/streams.js';
import { Rng } from '../../src/util/rng.js';
import { KILL_CONFIG, killData, killModel } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-run-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A simulated kill: thrown at a write boundary, caught by nothing in the writer. */
class Killed extends Error {}

const run = (out: string, extra: Partial<Parameters<typeof trainSupervised>[0]> = {}) =>
  trainSupervised({
    def: killModel(),
    train: killData(),
    config: KILL_CONFIG,
    outDir: out,
    checkpointEvery: 2,
    ...extra,
  });

describe('non-finite values stop training', () => {
  test('an absurd learning rate stops at the first bad step; the last checkpoint is finite', async () => {
    const out = join(root, 'nan');
    const err = await run(out, { config: { ...KILL_CONFIG, lr: 1e30 }, checkpointEvery: 1 }).then(
      () => assert.fail('training did not stop'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof NonFiniteError, String(err));
    const { step, epoch, phase, tensor } = err.detail;
    assert.equal(phase, 'backbone');
    assert.ok(step! >= 2 && tensor, err.message);
    assert.ok(err.message.includes(`step ${step}`) && err.message.includes(`'${tensor}'`));
    assert.match(err.message, new RegExp(`the last checkpoint \\(step ${step! - 1}\\) is kept`));
    assert.equal(epoch, Math.floor((step! - 1) / 3));
    // The checkpoint of the step before holds only finite numbers and resumes.
    const ck = loadCheckpoint(out);
    assert.equal(ck.state.globalStep, step! - 1);
    for (const [n, t] of ck.tensors) assert.ok((t.data as Float32Array).every(Number.isFinite), n);
    for (const s of Object.values(ck.optimizers))
      for (const [n, bufs] of s.buffers)
        assert.ok(
          bufs.every((b) => b.every(Number.isFinite)),
          n,
        );
  });

  test('a NaN in one batch stops that step, naming the first parameter with a NaN gradient', async () => {
    const data = killData();
    // Image 5 is in a batch of the first epoch; which step depends on the seeded order.
    data.images[5 * 64 + 10] = Number.NaN;
    const steps: number[][] = [];
    const err = await trainSupervised({
      def: killModel(),
      train: data,
      config: KILL_CONFIG,
      onStepInfo: (s) => steps.push([...s.batch]),
    }).then(
      () => assert.fail('training did not stop'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof NonFiniteError);
    // Every completed step had a batch without image 5; the failing step is the next one.
    assert.ok(steps.every((b) => !b.includes(5)));
    assert.equal(err.detail.step, steps.length + 1);
    assert.equal(err.detail.what, 'loss');
    // fc1 is the first trainable parameter the NaN input reaches.
    assert.equal(err.detail.tensor, 'fc1.weight');
    assert.match(err.message, /no checkpoint of this run was written/);
  });
});

describe('resume', () => {
  test('refuses changed hyper-parameters, naming them, unless overridden', async () => {
    const out = join(root, 'hyper');
    await run(out, { stopAfter: 1 });
    const err = await run(out, {
      resume: true,
      config: { ...KILL_CONFIG, lr: 1e-2, batchSize: 6 },
    }).then(
      () => assert.fail('resume accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ResumeMismatchError);
    assert.deepEqual(
      err.changed.map((c) => [c.key, c.was, c.now]),
      [
        ['batchSize', 8, 6],
        ['lr', 2e-2, 1e-2],
      ],
    );
    const res = await run(out, {
      resume: true,
      override: true,
      config: { ...KILL_CONFIG, lr: 1e-2 },
    });
    assert.equal(res.history.length, 2);
  });
});

describe('a new objective is a graph and a feeds function', () => {
  // A miniature of DDPM's epsilon prediction on 4-d data: x_t = s1 x + s2 ε with a
  // per-sample t, and a linear noise predictor ε̂ = W x_t + c trained on mean (ε̂ − ε)².
  const dim = 4;
  const n = 40;
  // Data of small variance: the noise is most of x_t, so ε̂ can learn to recover it.
  const rows = new Rng(9).fillNormal(new Float32Array(n * dim), 0, 0.1);
  const s = [0.9, 0.6, 0.3];
  function objective() {
    const b = new GraphBuilder({ seed: 0 });
    const xt = b.add(
      b.mul(b.input('x', 'float32', ['N', dim]), b.input('s1', 'float32', ['N', 1])),
      b.mul(b.input('eps', 'float32', ['N', dim]), b.input('s2', 'float32', ['N', 1])),
    );
    const w = b.param('w', [dim, dim], { kind: 'zeros' });
    const c = b.param('c', [dim], { kind: 'zeros' });
    const diff = b.sub(b.gemm(xt, w, c, { transB: 1 }), b.value('eps'));
    b.output(b.mean(b.mul(diff, diff)), 'loss');
    const built = b.build();
    const store = ParamStore.fromInitializers(built.model.graph.initializers, built.params);
    const obj = graphObjective({
      graph: { model: built.model, loss: 'loss', trainable: built.params },
      feeds: (idx, streams) => {
        const m = idx.length;
        const x = new Float32Array(m * dim);
        const s1 = new Float32Array(m);
        const s2 = new Float32Array(m);
        idx.forEach((r, i) => {
          x.set(rows.subarray(r * dim, (r + 1) * dim), i * dim);
          const t = streams.noise.int(3);
          s1[i] = Math.sqrt(s[t]!);
          s2[i] = Math.sqrt(1 - s[t]!);
        });
        return {
          x: float32([m, dim], x),
          eps: float32([m, dim], streams.noise.fillNormal(new Float32Array(m * dim))),
          s1: float32([m, 1], s1),
          s2: float32([m, 1], s2),
        };
      },
    });
    return { store, obj, names: built.params };
  }

  async function train(out: string, hook?: (b: string) => void, resume = false) {
    const { store, obj, names } = objective();
    const ema = store.clone();
    const opt = new AdamW(store, [{ name: 'all', params: names }]);
    const res = await runTraining({
      epochs: 4,
      phases: [
        {
          name: 'ddpm',
          updates: ['backbone'],
          objective: obj,
          params: store,
          optimizer: opt,
          lr: constantLr(0.05),
          batches: (order) => epochBatches(n, 8, order),
          streams: separateStreams(5),
          // An EMA of the weights, kept in the checkpoints with them.
          afterUpdate: () => {
            for (const p of names) {
              const e = ema.get(p).data;
              store.get(p).data.forEach((v, i) => (e[i] = 0.9 * e[i]! + 0.1 * v));
            }
          },
        },
      ],
      stores: { weights: store, ema },
      logFile: join(out, 'log.jsonl'),
      identity: { preset: 'toy-eps', config: {}, hyper: { lr: 0.05 } },
      checkpoint: { path: join(out, 'checkpoint'), every: 3, hook },
      resume: resume ? { path: join(out, 'checkpoint') } : undefined,
    });
    return { res, store, ema };
  }

  test('it trains, keeps its EMA, and resumes inside an epoch bit-identically', async () => {
    const a = await train(join(root, 'eps-a'));
    // ε̂ = 0 scores E ε² = 1; the trained predictor recovers much of the noise.
    const [first, last] = [a.res.history[0]!, a.res.history.at(-1)!];
    assert.ok(last.loss < first.loss && last.loss < 0.6, `${first.loss} -> ${last.loss}`);
    assert.equal(a.res.compute.backboneSteps, 4 * 5);
    // 5 steps per epoch, checkpoints at steps 3, 5, 6, 9, ...: killed just after the one of
    // step 9 (inside epoch 1) was published.
    const out = join(root, 'eps-b');
    let switched = 0;
    await assert.rejects(
      train(out, (b) => {
        if (b === 'switched' && ++switched === 4) throw new Killed(b);
      }),
      Killed,
    );
    const ck = loadCheckpoint(out);
    assert.equal(ck.state.globalStep, 9);
    assert.equal(ck.state.epoch, 0); // epoch 1 is under way
    const before = (ck.state.loop as { inside?: { seconds?: number } } | undefined)?.inside
      ?.seconds;
    assert.equal(typeof before, 'number', 'the checkpoint keeps the epoch time so far');
    const b = await train(out, undefined, true);
    // The resumed epoch's time includes the part before the kill.
    assert.ok(b.res.history[1]!.seconds >= before!, `${b.res.history[1]!.seconds} < ${before}`);
    for (const set of ['store', 'ema'] as const)
      for (const p of ['w', 'c'])
        assert.deepEqual(b[set].get(p).data, a[set].get(p).data, `${set} ${p}`);
    assert.deepEqual(b.res.compute, a.res.compute);
    assert.deepEqual(
      b.res.history.map((h) => h.loss),
      a.res.history.map((h) => h.loss),
    );
  });
});
