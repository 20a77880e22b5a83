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

  test("baselines: raw pixels, and a backbone's penultimate features", async () => {
    const p = await runHere('probe', 'pixels', ...quick);
    assert.equal(p.code, 0, p.err);
    const px = lastJson<{ t: null; block: string; acc1: number }>(p.out);
    assert.deepEqual([px.t, px.block], [null, 'pixels']);
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

  test('no trained U-Net in the zoo, a missing folder: model errors (exit 2)', async () => {
    for (const cmd of [
      ['probe', 'zoo:ddpm-unet-fmnist', ...quick],
      ['sample', 'zoo:ddpm-unet-fmnist', '--out', join(dir, 'z.png'), ...fast],
    ]) {
      const r = await runHere(...cmd);
      assert.equal(r.code, 2, cmd.join(' '));
      assert.match(r.err, /zoo:ddpm-unet-fmnist: the zoo ships no trained diffusion U-Net yet/);
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
