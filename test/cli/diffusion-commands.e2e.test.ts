// `denoiserep sample` and `denoiserep probe` end to end on a small random U-Net for
// 28x28 images and the committed Fashion-MNIST subset.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { getDiffusionPreset, getPreset } from '../../src/models/registry.js';
import { unetInitialWeights, unetModel } from '../../src/models/unet-graph.js';
import { exportOnnx, initialWeights } from '../../src/models/weights.js';
import { writeZooEntry } from '../../src/models/zoo.js';
import { writeModel } from '../../src/onnx/serialize.js';
import { lastJson, runHere } from './run-here.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-ddpm-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const unetDir = join(dir, 'unet');
const def = getDiffusionPreset('ddpm-unet-fmnist-micro');
mkdirSync(unetDir);
writeModel(join(unetDir, 'model.onnx'), unetModel(def, unetInitialWeights(def, 1)));
const resnet = join(dir, 'resnet.onnx');
exportOnnx(
  getPreset('resnet-tiny-fmnist'),
  initialWeights(getPreset('resnet-tiny-fmnist'), 2),
  resnet,
);
const model = join(unetDir, 'model.onnx');
const fast = ['--data', 'embedded', '--threads', '1'];

describe('denoiserep sample', () => {
  test('a seeded PNG grid: same seed, same bytes; another seed, other images', async () => {
    const grid = (seed: string, name: string) =>
      runHere(
        'sample',
        model,
        '--n',
        '4',
        '--steps',
        '3',
        '--seed',
        seed,
        '--out',
        join(dir, name),
        '--json',
        ...fast,
      );
    const a = await grid('5', 'a.png');
    assert.equal(a.code, 0, a.err);
    assert.deepEqual(
      { n: lastJson<{ n: number }>(a.out).n, steps: lastJson<{ steps: number }>(a.out).steps },
      { n: 4, steps: 3 },
    );
    // 2x2 images of 28 px at scale 2 with 2 px padding: 2·(56 + 2) + 2 = 118.
    const meta = await sharp(join(dir, 'a.png')).metadata();
    assert.deepEqual([meta.width, meta.height, meta.channels], [118, 118, 1]);
    assert.equal((await grid('5', 'b.png')).code, 0);
    assert.ok(readFileSync(join(dir, 'a.png')).equals(readFileSync(join(dir, 'b.png'))));
    assert.equal((await grid('6', 'c.png')).code, 0);
    assert.ok(!readFileSync(join(dir, 'a.png')).equals(readFileSync(join(dir, 'c.png'))));
  });

  test('Fréchet distance in a backbone feature space, with the two-halves floor', async () => {
    const r = await runHere(
      'sample',
      model,
      '--n',
      '40',
      '--steps',
      '2',
      '--fid-model',
      resnet,
      '--json',
      ...fast,
    );
    assert.equal(r.code, 0, r.err);
    const { fid } = lastJson<{
      fid: { fd: number; floor: number; generated: number; reference: number; floorImages: number };
    }>(r.out);
    assert.deepEqual([fid.generated, fid.reference, fid.floorImages], [40, 1000, 40]);
    // Images of an untrained U-Net are far from real ones; two real halves are close.
    assert.ok(fid.floor >= 0 && fid.fd > 2 * fid.floor, `fd ${fid.fd}, floor ${fid.floor}`);
  });

  test('bad flags are usage errors (exit 1)', async () => {
    const a = await runHere(
      'sample',
      model,
      '--method',
      'euler',
      '--out',
      join(dir, 'x.png'),
      ...fast,
    );
    assert.equal(a.code, 1);
    assert.match(a.err, /--method must be ddim or ddpm/);
    const b = await runHere(
      'sample',
      model,
      '--method',
      'ddpm',
      '--steps',
      '10',
      '--out',
      join(dir, 'x.png'),
      ...fast,
    );
    assert.equal(b.code, 1);
    assert.match(b.err, /use --method ddim for fewer/);
    const clobber = await runHere('sample', model, '--out', model, ...fast);
    assert.equal(clobber.code, 1);
    assert.match(clobber.err, /refusing to overwrite an input/);
    const c = await runHere('sample', resnet, '--out', join(dir, 'x.png'), ...fast);
    assert.equal(c.code, 2);
    assert.match(c.err, /not a diffusion U-Net/);
  });
});

describe('denoiserep probe', () => {
  const quick = ['--train-images', '600', '--epochs', '2', '--json', ...fast];

  test('a U-Net block at a step: last line { t, block, acc1 }', async () => {
    const r = await runHere('probe', model, '--t', '10', '--block', 'mid', ...quick);
    assert.equal(r.code, 0, r.err);
    const res = lastJson<{ t: number; block: string; acc1: number; trainImages: number }>(r.out);
    assert.deepEqual([res.t, res.block, res.trainImages], [10, 'mid', 600]);
    assert.ok(res.acc1 > 10 && res.acc1 <= 100, `acc1 ${res.acc1}`);
  });

  test('a sweep writes the heatmap; later probes default to its best cell', async () => {
    const out = join(dir, 'sweep');
    const missing = await runHere('probe', unetDir, '--sweep', '--out', out, ...quick);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /folder .*sweep does not exist/);
    mkdirSync(out);
    const r = await runHere(
      'probe',
      unetDir,
      '--sweep',
      '--ts',
      '0,50',
      '--blocks',
      'down.0,mid',
      '--out',
      out,
      ...quick,
    );
    assert.equal(r.code, 0, r.err);
    for (const f of ['probe-sweep.json', 'probe-sweep.svg', 'probe-sweep.png']) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const sweep = JSON.parse(readFileSync(join(out, 'probe-sweep.json'), 'utf8')) as {
      cells: { t: number; block: string; acc1: number }[];
      best: { t: number; block: string; acc1: number };
    };
    assert.equal(sweep.cells.length, 4);
    assert.equal(sweep.best.acc1, Math.max(...sweep.cells.map((c) => c.acc1)));
    assert.deepEqual(lastJson<{ t: number; block: string }>(r.out).t, sweep.best.t);
    // The sweep went elsewhere than the model's folder: the model's default is the fallback.
    const d = await runHere('probe', unetDir, ...quick);
    assert.deepEqual(
      lastJson<{ chosenBy: string; t: number; block: string }>(d.out).chosenBy,
      'fallback',
    );
  });

  test('--val-images: the sweep scores its cells on held-out training images', async () => {
    const out = join(dir, 'sweep-val');
    mkdirSync(out);
    const args = ['--sweep', '--ts', '0', '--blocks', 'mid', '--out', out];
    const r = await runHere('probe', unetDir, ...args, '--val-images', '300', ...quick);
    assert.equal(r.code, 0, r.err);
    const sweep = JSON.parse(readFileSync(join(out, 'probe-sweep.json'), 'utf8')) as {
      test: string;
      testImages: number;
      trainImages: number;
    };
    assert.deepEqual([sweep.trainImages, sweep.testImages], [600, 300]);
    assert.match(sweep.test, /held out/);
    const single = await runHere('probe', unetDir, '--val-images', '300', ...quick);
    assert.equal(single.code, 1);
    assert.match(single.err, /--val-images goes with --sweep/);
    const all = await runHere('probe', unetDir, ...args, '--val-images', '100000', ...quick);
    assert.equal(all.code, 1);
    assert.match(all.err, /leaves no training images/);
  });

  test("baselines: raw pixels, and a backbone's penultimate features", async () => {
    const p = await runHere('probe', 'pixels', ...quick);
    assert.equal(p.code, 0, p.err);
    const px = lastJson<{ t: null; block: string; acc1: number; ci95: number[] }>(p.out);
    assert.deepEqual([px.t, px.block], [null, 'pixels']);
    // The Wilson interval over the 2,000 embedded test images brackets acc1, about ±2 points.
    const [lo, hi] = px.ci95 as [number, number];
    assert.ok(lo < px.acc1 && px.acc1 < hi && hi - lo > 2 && hi - lo < 5, `${lo} ${hi}`);
    assert.ok(px.acc1 > 60, `pixel probe on 600 images: ${px.acc1}%`);
    const b = await runHere('probe', resnet, ...quick);
    assert.equal(b.code, 0, b.err);
    const fromFile = lastJson<{ block: string; acc1: number }>(b.out);
    assert.equal(fromFile.block, 'backbone');
    // The same weights as a zoo entry: the same features, the same seeded probe.
    const zoo = join(dir, 'zoo');
    writeZooEntry({
      root: zoo,
      def: getPreset('resnet-tiny-fmnist'),
      values: initialWeights(getPreset('resnet-tiny-fmnist'), 2),
      commands: ['(test) initial weights, seed 2'],
      commit: '0000000',
      data: 'none',
      acc1: 10,
      testImages: 1,
    });
    process.env.DENOISEREP_ZOO = zoo;
    try {
      const z = await runHere('probe', 'zoo:resnet-tiny-fmnist', ...quick);
      assert.equal(z.code, 0, z.err);
      const fromZoo = lastJson<{ block: string; acc1: number }>(z.out);
      assert.deepEqual([fromZoo.block, fromZoo.acc1], ['backbone', fromFile.acc1]);
    } finally {
      delete process.env.DENOISEREP_ZOO;
    }
  });

  test('a shipped U-Net: probe defaults to its manifest cell, sample reads it', async () => {
    const zoo = join(dir, 'zoo-unet');
    writeZooEntry({
      root: zoo,
      def,
      values: unetInitialWeights(def, 1),
      commands: ['(test) initial weights, seed 1'],
      commit: '0000000',
      data: 'none',
      acc1: 10,
      testImages: 1,
      probe: { t: 25, block: 'down.0' },
    });
    const ref = `zoo:${def.name}`;
    process.env.DENOISEREP_ZOO = zoo;
    try {
      const z = await runHere('probe', ref, ...quick);
      assert.equal(z.code, 0, z.err);
      const fromZoo = lastJson<{ t: number; block: string; acc1: number; chosenBy: string }>(z.out);
      assert.deepEqual([fromZoo.t, fromZoo.block, fromZoo.chosenBy], [25, 'down.0', 'manifest']);
      // The same weights from the exported file, the cell given by flags: the same probe.
      const f = await runHere('probe', model, '--t', '25', '--block', 'down.0', ...quick);
      assert.equal(lastJson<{ acc1: number }>(f.out).acc1, fromZoo.acc1);
      // --t alone keeps the manifest's block.
      const t = await runHere('probe', ref, '--t', '0', ...quick);
      assert.deepEqual(
        [lastJson<{ t: number }>(t.out).t, lastJson<{ block: string }>(t.out).block],
        [0, 'down.0'],
      );
      const grid = (src: string, name: string) =>
        runHere('sample', src, '--n', '4', '--steps', '3', '--out', join(dir, name), ...fast);
      assert.equal((await grid(ref, 'z.png')).code, 0);
      assert.equal((await grid(model, 'm.png')).code, 0);
      assert.ok(readFileSync(join(dir, 'z.png')).equals(readFileSync(join(dir, 'm.png'))));
      const sw = await runHere('probe', ref, '--sweep', ...quick);
      assert.equal(sw.code, 1);
      assert.match(sw.err, /--sweep of a zoo entry needs --out/);
      const e = await runHere('eval', ref, ...fast);
      assert.equal(e.code, 1);
      assert.match(e.err, /is a diffusion U-Net, not a classifier backbone/);
    } finally {
      delete process.env.DENOISEREP_ZOO;
    }
  });

  test('a U-Net the zoo lacks, a missing folder: clear errors', async () => {
    process.env.DENOISEREP_ZOO = join(dir, 'zoo-unet');
    try {
      const r = await runHere('probe', 'zoo:ddpm-unet-fmnist', ...quick);
      assert.equal(r.code, 1);
      assert.match(r.err, /no zoo entry 'ddpm-unet-fmnist'/);
    } finally {
      delete process.env.DENOISEREP_ZOO;
    }
    const m = await runHere('probe', join(dir, 'no-such-run'), ...quick);
    assert.equal(m.code, 2);
    assert.match(m.err, /no such model or run folder: .*no-such-run/);
  });

  test('bad flags are usage errors (exit 1)', async () => {
    const a = await runHere('probe', model, '--block', 'middle', '--t', '5', ...quick);
    assert.equal(a.code, 1);
    assert.match(a.err, /has no block 'middle'/);
    const b = await runHere('probe', 'pixels', '--head', 'attention', ...quick);
    assert.equal(b.code, 1);
    assert.match(b.err, /--head attention needs a U-Net/);
    const c = await runHere('probe', 'pixels', '--sweep', ...quick);
    assert.equal(c.code, 1);
    assert.match(c.err, /--sweep needs a DDPM U-Net/);
  });
});
