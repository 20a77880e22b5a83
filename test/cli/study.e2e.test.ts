// `denoiserep study` on the command line, on a tiny backbone trained here: the flags reach
// the settings, the last stdout line is the JSON object, bad flags are usage errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { subset } from '../../src/data/dataset.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import type { studyJson } from '../../src/experiments/study.js';
import { getPreset } from '../../src/models/registry.js';
import { trainSupervised } from '../../src/train/loop.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-study-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const backbone = join(root, 'mlp');

describe('study command', () => {
  before(async () => {
    const train = await loadFashionMnist('embedded', 'train');
    await trainSupervised({
      def: getPreset('mlp-fmnist'),
      train: subset(
        train,
        Int32Array.from({ length: 256 }, (_, i) => i * 37),
      ),
      config: { epochs: 1, batchSize: 64, lr: 3e-3, seed: 0, threads: 1 },
      outDir: backbone,
    });
  });

  test('the command: flags reach the settings; the last stdout line is the JSON object', () => {
    const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        join(repo, 'src', 'cli', 'index.ts'),
        'study',
        ...[
          '--backbone',
          backbone,
          '--data',
          'embedded',
          '--seeds',
          '1',
          '--arms',
          'label-free-cf',
        ],
        ...['--layers', 'fc2,head', '--corruptions', 'jpeg,contrast', '--severities', '1,5'],
        ...['--noise-scales', '1,30', '--train-images', '256', '--test-images', '200'],
        ...['--corrupted-images', '30', '--queries-per-class', '5', '--out', join(root, 'cli')],
        ...['--threads', '1', '--json'],
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ReturnType<typeof studyJson> & {
      arms: Record<string, { acc1: { perSeed: number[] } }>;
      sweep: { noiseScale: number }[];
    };
    assert.deepEqual(j.seeds, [0]);
    assert.deepEqual(Object.keys(j.arms), ['baseline', 'label-free-cf']);
    assert.deepEqual(j.corruptions, ['jpeg', 'contrast']);
    assert.deepEqual(
      j.sweep.map((p) => p.noiseScale),
      [1, 30],
    );
    assert.equal(j.arms.baseline!.acc1.perSeed.length, 1);
    const bad = spawnSync(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        join(repo, 'src', 'cli', 'index.ts'),
        'study',
        '--arms',
        'label-magic',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--arms: unknown arm 'label-magic'/);
  });
});
