// `zoo:<preset>` on the command line: eval prints the measured acc@1 in percent and the
// manifest's; inspect takes the reference like a model path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { getPreset } from '../../src/models/registry.js';
import { initialWeights } from '../../src/models/weights.js';
import { writeZooEntry } from '../../src/models/zoo.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'src', 'cli', 'index.ts');
const tsx = import.meta.resolve('tsx');
const root = mkdtempSync(join(tmpdir(), 'denoiserep-zoo-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

const def = getPreset('mlp-fmnist');
const values = initialWeights(def, 4);

describe('zoo on the command line', () => {
  before(() => {
    writeZooEntry({
      root,
      def,
      values,
      commands: ['denoiserep pretrain --model mlp-fmnist --epochs 1'],
      commit: '0123abc',
      data: 'fashion-mnist embedded subset',
      acc1: 12.5,
      testImages: 2000,
    });
  });

  test('eval zoo:<preset> --json: last line has acc1 in percent and the manifest’s figure', async () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        tsx,
        cli,
        'eval',
        'zoo:mlp-fmnist',
        '--data',
        'embedded',
        '--json',
        '--threads',
        '1',
      ],
      { encoding: 'utf8', env: { ...process.env, DENOISEREP_ZOO: root } },
    );
    assert.equal(r.status, 0, r.stderr);
    const last = r.stdout.trim().split('\n').at(-1)!;
    const j = JSON.parse(last) as { acc1: number; manifest: { acc1: number }; images: number };
    const test = await loadFashionMnist('embedded', 'test');
    const e = await evaluateModel({ def, values }, test, { task: 'classification', threads: 1 });
    assert.equal(j.images, 2000);
    assert.ok(Math.abs(j.acc1 - 100 * e.acc1) < 1e-9, `${j.acc1} vs ${100 * e.acc1}`);
    assert.equal(j.manifest.acc1, 12.5);
    // Any command that takes a model path takes the reference.
    const i = spawnSync(
      process.execPath,
      ['--import', tsx, cli, 'inspect', 'zoo:mlp-fmnist', '--json'],
      {
        encoding: 'utf8',
        env: { ...process.env, DENOISEREP_ZOO: root },
      },
    );
    assert.equal(i.status, 0, i.stderr);
    const info = JSON.parse(i.stdout.trim().split('\n').at(-1)!) as { layers: unknown[] };
    assert.ok(info.layers.length > 0);
  });
});
