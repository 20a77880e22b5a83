// The demo pipeline end to end on a small setting (the MLP preset, 300 training images,
// one pretraining epoch): every arm measured, every fused arm verified with identical
// topology and FLOPs, DenoiseRep~ costing extra parameters and FLOPs, the run folder
// written, and the baseline reused by the next run.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultBackbone } from '../../src/experiments/backbone.js';
import { runDemo } from '../../src/experiments/demo.js';
import { zooEntries } from '../../src/models/zoo.js';
import { UsageError } from '../../src/util/errors.js';
import { ARMS } from '../../src/experiments/table.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-demo-'));
after(() => rmSync(root, { recursive: true, force: true }));

// From scratch (`--from-scratch`): the shipped ViT would make this test minutes long.
const settings = {
  backbone: null,
  preset: 'mlp-fmnist',
  trainImages: 300,
  pretrainEpochs: 1,
  extraEpochs: 2,
  latencyRuns: 3,
};

describe('demo', () => {
  test('measures every arm, verifies every fusion and writes the run folder', async () => {
    const res = await runDemo({ root, seeds: [0], threads: 1, settings });
    assert.deepEqual(Object.keys(res.runs[0]!), [...ARMS]);
    const arms = res.runs[0]!;
    for (const a of ARMS) {
      const r = arms[a]!;
      for (const k of ['acc1', 'mAP', 'rank1'] as const)
        assert.ok(r[k] >= 0 && r[k] <= 1, `${a}.${k} = ${r[k]}`);
      assert.ok(r.msPerImage > 0, `${a}: latency ${r.msPerImage}`);
    }
    // A 300-image epoch of an MLP already learns (chance is 10%).
    assert.ok(arms.baseline!.acc1 > 0.4, `baseline acc ${arms.baseline!.acc1}`);
    for (const a of ['control', 'label-free', 'label-free-cf', 'label-aug'] as const) {
      assert.equal(arms[a]!.params, arms.baseline!.params, a);
      assert.equal(arms[a]!.flops, arms.baseline!.flops, a);
    }
    assert.ok(arms['denoiserep~']!.params > arms.baseline!.params);
    assert.ok(arms['denoiserep~']!.flops > arms.baseline!.flops);

    assert.deepEqual(
      res.verify.map((v) => v.arm),
      ['label-free', 'label-free-cf', 'label-aug'],
    );
    for (const v of res.verify) {
      assert.ok(v.report.ok, `${v.arm}: ${v.report.failures.join('; ')}`);
      assert.equal(v.report.topology.identical, true);
      assert.ok(v.report.maxRelError < 1e-4, `${v.arm}: ${v.report.maxRelError}`);
    }
    // The closed-form denoisers reach a lower denoising loss than they start from (zero),
    // and lower than a couple of epochs of SGD from the PyTorch-style initialisation.
    const d = Object.fromEntries(res.diagnostics.map((x) => [x.arm, x]));
    assert.ok(d['label-free-cf']!.lossAfter < d['label-free-cf']!.lossBefore);
    assert.ok(d['label-free']!.lossAfter < d['label-free']!.lossBefore);
    assert.ok(d['label-free-cf']!.lossAfter <= d['label-free']!.lossAfter * 1.01);
    // The MSE-optimal map only shrinks: no singular value above c3 = 1/sqrt(alpha_t) < 1.001.
    assert.ok(d['label-free-cf']!.maxSingularValue < 1.001);
    assert.ok(d['label-free-cf']!.shrunkDirections > 0);

    for (const f of [
      'table.md',
      'results.json',
      'log.jsonl',
      'baseline.onnx',
      'label-free.onnx',
      'label-free-cf.onnx',
      'label-aug.onnx',
      'label-aug-backbone.onnx',
      'denoiserep-tilde.onnx',
      'label-free-cf-diagnostics.json',
      'label-free-cf-spectra.svg',
      'label-free-cf-spectra.png',
    ])
      assert.ok(existsSync(join(res.dir, f)), f);
    const table = readFileSync(join(res.dir, 'table.md'), 'utf8');
    // One row per arm in the paper's order, holding that arm's measured numbers (percentages
    // to 2 decimals, params and FLOPs in millions).
    const rows = table
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| method') && !l.startsWith('| ---'))
      .map((l) =>
        l
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
    assert.deepEqual(
      rows.map((r) => r[0]),
      [...ARMS],
    );
    for (const [i, a] of ARMS.entries()) {
      const [, acc1, mAP, rank1, , params, flops] = rows[i]!.map((c) => parseFloat(c));
      const r = arms[a]!;
      const near = (got: number | undefined, want: number, step: number, what: string) =>
        assert.ok(Math.abs(got! - want) <= step / 2 + 1e-9, `${a} ${what}: ${got} vs ${want}`);
      near(acc1, 100 * r.acc1, 0.01, 'acc@1');
      near(mAP, 100 * r.mAP, 0.01, 'mAP');
      near(rank1, 100 * r.rank1, 0.01, 'Rank-1');
      near(params, r.params / 1e6, 0.001, 'params');
      near(flops, r.flops / 1e6, 0.01, 'FLOPs');
    }
    const results = JSON.parse(readFileSync(join(res.dir, 'results.json'), 'utf8')) as {
      seeds: number[];
    };
    assert.deepEqual(results.seeds, [0]);
  });

  test('a second run reuses the baseline trained by the first', async () => {
    const res = await runDemo({
      root,
      seeds: [0],
      threads: 1,
      settings: { ...settings, extraEpochs: 1 },
    });
    const log = readFileSync(join(res.dir, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(log.some((r) => r.kind === 'baseline' && typeof r.reused === 'string'));
    assert.ok(!log.some((r) => r.stage === 'pretrain'));
  });

  test('a given backbone: every seed starts from its weights, none is trained', async () => {
    const first = readdirSync(join(root, 'baselines'));
    assert.equal(first.length, 1);
    const backbone = join(root, 'baselines', first[0]!);
    const res = await runDemo({
      root,
      seeds: [0, 1],
      threads: 1,
      settings: { ...settings, backbone, preset: 'vit-tiny-fmnist', extraEpochs: 1 },
    });
    assert.equal(res.settings.preset, 'mlp-fmnist', "the backbone's preset, not the setting");
    const log = readFileSync(join(res.dir, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      log.filter((r) => r.kind === 'baseline').map((r) => [r.seed, r.backbone]),
      [
        [0, backbone],
        [1, backbone],
      ],
    );
    assert.ok(!log.some((r) => r.stage === 'pretrain'));
    assert.deepEqual(readdirSync(join(root, 'baselines')), first, 'no baseline was trained');
    // Both seeds measure the same baseline: the weights were not changed by seed 0's arms.
    assert.equal(res.runs[0]!.baseline!.acc1, res.runs[1]!.baseline!.acc1);
    assert.equal(res.runs[0]!.baseline!.mAP, res.runs[1]!.baseline!.mAP);
  });

  test('a missing backbone is refused before the run folder is made', async () => {
    const before = readdirSync(root).sort();
    await assert.rejects(
      runDemo({ root, settings: { ...settings, backbone: join(root, 'nope') } }),
      /--backbone .*nope: not zoo:<preset> and no such folder/,
    );
    assert.deepEqual(readdirSync(root).sort(), before);
  });

  test('the default backbone: the shipped ViT, else the first zoo entry; an empty zoo is refused', async () => {
    const saved = process.env.DENOISEREP_ZOO;
    const empty = mkdtempSync(join(root, 'zoo-'));
    try {
      process.env.DENOISEREP_ZOO = empty;
      assert.equal(defaultBackbone(), '');
      const { backbone, ...scratch } = settings;
      assert.equal(backbone, null);
      const before = readdirSync(root).sort();
      await assert.rejects(
        runDemo({ root, settings: scratch }),
        (e) => e instanceof UsageError && /zoo has no entry.*--from-scratch/.test(e.message),
      );
      assert.deepEqual(readdirSync(root).sort(), before);
    } finally {
      if (saved === undefined) delete process.env.DENOISEREP_ZOO;
      else process.env.DENOISEREP_ZOO = saved;
    }
    const shipped = zooEntries();
    assert.equal(
      defaultBackbone(),
      shipped.includes('vit-tiny-fmnist') ? 'zoo:vit-tiny-fmnist' : `zoo:${shipped[0]}`,
    );
  });
});
