// The study end to end on a tiny backbone trained here (the MLP preset on 512 images):
// every arm with its control, the compute match of label-aug and its control, the files,
// the --json shape, and a killed study that continues to the same results.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { subset } from '../../src/data/dataset.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { getPreset } from '../../src/models/registry.js';
import {
  runStudy,
  type StudyRun,
  studyJson,
  type StudySettings,
} from '../../src/experiments/study.js';
import { study, studyOverrides } from '../../src/experiments/study-api.js';
import type { StudyResults } from '../../src/experiments/study-report.js';
import { trainSupervised } from '../../src/train/loop.js';
import { UsageError } from '../../src/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-study-'));
after(() => rmSync(root, { recursive: true, force: true }));
const backbone = join(root, 'mlp');

const settings: Partial<StudySettings> = {
  backbone,
  data: 'embedded',
  seeds: [0, 1],
  // fc2 and head: the 784-wide fc1 would only make the test slower.
  layers: 'fc2,head',
  severities: [2],
  noiseScales: [1, 10, 100],
  trainImages: 256,
  testImages: 300,
  corruptedImages: 40,
  queriesPerClass: 5,
  batchSize: 64,
  labelFree: { epochs: 1, lr: 1e-3 },
  resamples: 1000,
};

describe('study', () => {
  let full: StudyRun;
  before(async () => {
    const train = await loadFashionMnist('embedded', 'train');
    await trainSupervised({
      def: getPreset('mlp-fmnist'),
      train: subset(
        train,
        Int32Array.from({ length: 512 }, (_, i) => i * 19),
      ),
      config: { epochs: 1, batchSize: 64, lr: 3e-3, seed: 0, threads: 1 },
      outDir: backbone,
    });
    full = await runStudy({ settings, root: join(root, 'a'), threads: 1 });
  });

  test('every arm with its control, the sweep and the corruptions', () => {
    const r = full.results;
    assert.deepEqual(Object.keys(r.arms), [
      'baseline',
      'label-free-cf',
      'label-free',
      'control',
      'label-aug',
    ]);
    assert.equal(r.arms['label-free-cf']!.control, 'baseline');
    assert.equal(r.arms['label-free']!.control, 'baseline');
    assert.equal(r.arms['label-aug']!.control, 'control');
    assert.deepEqual(
      r.sweep.map((p) => p.noiseScale),
      [1, 10, 100],
    );
    assert.equal(r.corruptions.length, 10);
    for (const a of Object.values(r.arms)) {
      for (const m of [a.acc1, a.map, a.corruptedAcc1]) {
        assert.ok(m.mean > 0 && m.mean <= 100, `${a.name}: ${m.mean}`);
        assert.ok(
          m.ci && m.ci[0] <= m.mean + 1e-9 && m.mean <= m.ci[1] + 1e-9,
          `${a.name}: ${m.ci}`,
        );
      }
      assert.equal(a.acc1.perSeed.length, 2);
    }
    // Trained arms: a t-interval across the two seeds; deterministic ones: a bootstrap.
    assert.equal(r.arms['label-aug']!.acc1.ciMethod, 't-across-seeds');
    assert.equal(r.arms['label-free-cf']!.acc1.ciMethod, 'bootstrap-images');
    // The sweep's level 1 is the closed-form arm.
    assert.equal(r.sweep[0]!.acc1.mean, r.arms['label-free-cf']!.acc1.mean);
    // Every fused model was verified.
    assert.equal(r.verify.length, 3 + 2 + 2);
    assert.ok(r.verify.every((v) => v.ok && v.maxRelError < 1e-4));
    assert.ok(r.conclusions.length >= 3);
  });

  test('label-aug and its control: the same backbone steps, learning rates, batches and draws', () => {
    const { compute } = full.results;
    for (let k = 0; k < 2; k++) {
      const a = compute['label-aug']![k]!;
      const c = compute.control![k]!;
      // 256 images in batches of 64: 4 backbone steps (one backbone epoch of two).
      assert.equal(a.backboneSteps, 4);
      for (const key of [
        'backboneSteps',
        'lrFirst',
        'lrLast',
        'dataOrderSeed',
        'backboneTrace',
      ] as const)
        assert.deepEqual(a[key], c[key], `seed ${k}: ${key}`);
      assert.equal(typeof a.backboneTrace, 'string');
      assert.equal(a.denoiserSteps, 4);
      assert.equal(c.denoiserSteps, 0);
    }
    assert.notEqual(
      compute['label-aug']![0]!.backboneTrace,
      compute['label-aug']![1]!.backboneTrace,
    );
    for (const x of compute['label-free']!) {
      assert.equal(x!.backboneSteps, 0);
      assert.equal(x!.denoiserSteps, 4);
    }
    assert.deepEqual(compute.baseline![0], compute['label-free-cf']![0]);
    assert.equal(compute.baseline![0]!.backboneSteps, 0);
  });

  test('writes results.json, table.md and a self-contained report.html', () => {
    for (const f of ['results.json', 'table.md', 'report.html'])
      assert.ok(existsSync(join(full.dir, f)), f);
    const html = readFileSync(join(full.dir, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<script|\bsrc=|\bhref=|https?:/i);
    assert.ok((html.match(/<svg /g) ?? []).length >= 6);
    const saved = JSON.parse(readFileSync(join(full.dir, 'results.json'), 'utf8')) as StudyResults;
    assert.deepEqual(studyJson(saved), studyJson(full.results));
  });

  test('--json: one object with exactly the issue’s keys', () => {
    // Walk the object as JSON: every level is a record of unknowns.
    type J = { [k: string]: J } & J[];
    const j = JSON.parse(JSON.stringify(studyJson(full.results))) as J;
    assert.deepEqual(Object.keys(j), ['seeds', 'arms', 'sweep', 'corruptions']);
    const a = j.arms!['label-aug']!;
    assert.deepEqual(Object.keys(a), [
      'control',
      'compute',
      'acc1',
      'map',
      'corruptedAcc1',
      'deltaVsControl',
    ]);
    assert.deepEqual(Object.keys(a.compute!), [
      'backboneSteps',
      'denoiserSteps',
      'lrFirst',
      'lrLast',
      'dataOrderSeed',
    ]);
    assert.deepEqual(Object.keys(a.acc1!), ['mean', 'ci', 'perSeed']);
    assert.deepEqual(Object.keys(a.deltaVsControl!), ['acc1', 'map']);
    assert.deepEqual(Object.keys(a.deltaVsControl!.acc1!), ['mean', 'ci']);
    assert.deepEqual(Object.keys(j.sweep![0]!), ['noiseScale', 'acc1', 'corruptedAcc1']);
    assert.equal(j.arms!.baseline!.deltaVsControl, null);
  });

  test('a killed study continues where it stopped and ends with the same results', async () => {
    const dir = join(root, 'b');
    const first = await runStudy({ settings, root: dir, threads: 1, stopAfter: 5 });
    assert.equal(first.interrupted, true);
    assert.equal(first.computed.length, 5);
    assert.ok(!existsSync(join(first.dir, 'results.json')));
    const files = first.computed.map((u) => u.split(':')[1]!);
    const mtimes = new Map(
      files.map((u) => {
        const f =
          [join(first.dir, 'models', `${u}.onnx`)].find(existsSync) ?? join(first.dir, 'log.jsonl');
        return [u, statSync(f).mtimeMs];
      }),
    );
    const second = await runStudy({ settings, root: dir, threads: 1 });
    assert.equal(second.dir, first.dir, 'the same settings find the same folder');
    assert.equal(second.interrupted, false);
    for (const u of first.computed) {
      assert.ok(second.cached.includes(u), `${u} was recomputed`);
      assert.ok(!second.computed.includes(u));
    }
    for (const [u, t] of mtimes)
      if (existsSync(join(first.dir, 'models', `${u}.onnx`)))
        assert.equal(statSync(join(first.dir, 'models', `${u}.onnx`)).mtimeMs, t, u);
    assert.deepEqual(studyJson(second.results), studyJson(full.results));
    // A third run computes nothing.
    const third = await runStudy({ settings, root: dir, threads: 1 });
    assert.equal(third.computed.length, 0);
  });

  test('study(): the one call takes the flags, runs, and a second call resumes to the same summary', async () => {
    const options = {
      backbone,
      data: 'embedded',
      seeds: 1,
      seed: 3,
      arms: ['label-free-cf' as const],
      layers: 'fc2,head',
      corruptions: ['contrast' as const, 'jpeg' as const],
      severities: [2],
      noiseScales: [1, 10, 100],
      trainImages: 256,
      testImages: 300,
      corruptedImages: 40,
      queriesPerClass: 5,
      out: join(root, 'c'),
      threads: 1,
    };
    const messages: string[] = [];
    const first = await study({ ...options, onProgress: (m) => messages.push(m) });
    assert.ok(messages.length > 0, 'progress was reported');
    assert.deepEqual(first.results.seeds, [3]);
    assert.deepEqual(first.results.corruptions, ['contrast', 'jpeg']);
    assert.deepEqual(Object.keys(first.results.arms), ['baseline', 'label-free-cf']);
    assert.deepEqual(first.summary, studyJson(first.results));
    assert.ok(existsSync(join(first.dir, 'report.html')));
    assert.match(first.results.command, /^study\(\{"backbone":/);
    const again = await study(options);
    assert.equal(again.dir, first.dir, 'the same options find the same study');
    assert.deepEqual(again.computed, []);
    assert.deepEqual(again.summary, first.summary);
  });

  test('study(): options map to settings; bad ones are UsageErrors naming the flag, before any work', async () => {
    assert.deepEqual(studyOverrides({ seeds: 2, seed: 5 }).seeds, [5, 6]);
    assert.deepEqual(studyOverrides({ seed: 4 }).seeds, [4]);
    assert.deepEqual(studyOverrides({ corruptions: 'all' }).corruptions?.length, 10);
    assert.deepEqual(studyOverrides({}), {});
    const out = join(root, 'never');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ arms: ['nope'] }, /^--arms: unknown arm 'nope'/],
      [{ arms: [] }, /^--arms: no arm given/],
      [{ seeds: 0 }, /^--seeds must be an integer in \[1, 20\]/],
      [{ seed: -1 }, /^--seed must be/],
      [{ severities: [6] }, /^--severities must be an integer in \[1, 5\]/],
      [{ noiseScales: [0] }, /^--noise-scales must be a number in \(0, /],
      [{ trainImages: 1.5 }, /^--train-images must be an integer/],
      [{ corruptions: ['fog'] }, /unknown corruption 'fog'/],
      [{ corruptions: [3] }, /^--corruptions must name corruptions/],
      [{ backbone: 7 }, /^--backbone must be a string/],
    ];
    for (const [bad, pattern] of cases)
      await assert.rejects(
        study({ ...bad, out }),
        (e) => e instanceof UsageError && pattern.test(e.message),
        JSON.stringify(bad),
      );
    assert.ok(!existsSync(out), 'nothing was written');
  });
});
