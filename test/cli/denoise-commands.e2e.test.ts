// The DenoiseRep commands end to end (inspect, convert, fit, fuse, verify), spawned as a
// user runs them, on a small model and generated images; and their bad-input errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { readModel, writeModel } from '../../src/onnx/serialize.js';
import { Rng } from '../../src/util/rng.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'src', 'cli', 'index.ts');
const tsx = import.meta.resolve('tsx');
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-dcli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', tsx, cli, ...args, '--threads', '1'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const model = join(dir, 'vit.onnx');
const images = join(dir, 'images');

before(async () => {
  // vit-micro takes 8x8 grey images: 24 random ones and a corrupt file.
  writeModel(
    model,
    buildBackbone(getPreset('vit-micro', { numClasses: 3 }), 'eval', 0).b.build().model,
  );
  mkdirSync(images);
  const rng = new Rng(1);
  for (let i = 0; i < 24; i++) {
    const px = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rng.uniform() * 256)));
    await sharp(px, { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toFile(join(images, `img${i}.png`));
  }
  writeFileSync(join(images, 'broken.png'), 'not an image');
});

describe('DenoiseRep commands', () => {
  test('fit (closed form) writes a fused model of identical topology; verify accepts it', () => {
    const r = run(
      'fit',
      model,
      '--images',
      images,
      '--skip-corrupt',
      '--out',
      join(dir, 'fused.onnx'),
      '--denoisers-out',
      join(dir, 'd.safetensors'),
      '--report',
      join(dir, 'r.json'),
      '--json',
    );
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as {
      skipped: number;
      images: number;
      layers: number;
      verification: { ok: boolean };
    };
    assert.equal(res.skipped, 1);
    assert.equal(res.images, 24);
    assert.equal(res.verification.ok, true);
    assert.match(readFileSync(join(dir, 'r.svg'), 'utf8'), /^<svg [^]*<polyline [^]*<\/svg>$/);
    // A real PNG (signature), drawn from the SVG.
    assert.deepEqual(
      [...readFileSync(join(dir, 'r.png')).subarray(0, 4)],
      [0x89, 0x50, 0x4e, 0x47],
    );
    const report = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')) as { layers: unknown[] };
    assert.equal(report.layers.length, res.layers);
    const v = run(
      'verify',
      model,
      '--fused',
      join(dir, 'fused.onnx'),
      '--denoisers',
      join(dir, 'd.safetensors'),
      '--images',
      images,
      '--skip-corrupt',
      '--runs',
      '3',
      '--json',
    );
    assert.equal(v.code, 0, v.err);
    const vr = JSON.parse(v.out) as {
      topology: { identical: boolean };
      flops: { original: number; fused: number };
      latency: unknown[];
    };
    assert.equal(vr.topology.identical, true);
    assert.equal(vr.flops.original, vr.flops.fused);
    assert.equal(vr.latency.length, 2);
  });

  test('sharded statistics merged give the same fused model as one pass', async () => {
    for (const i of [0, 1]) {
      const r = run(
        'fit',
        model,
        '--images',
        images,
        '--skip-corrupt',
        '--shard',
        `${i}/2`,
        '--stats-out',
        join(dir, `s${i}.bin`),
      );
      assert.equal(r.code, 0, r.err);
    }
    const m = run(
      'fit',
      model,
      '--from-stats',
      `${join(dir, 's0.bin')},${join(dir, 's1.bin')}`,
      '--out',
      join(dir, 'merged.onnx'),
    );
    assert.equal(m.code, 0, m.err);
    const a = await readModel(join(dir, 'fused.onnx'));
    const b = await readModel(join(dir, 'merged.onnx'));
    for (const [name, t] of a.graph.initializers) {
      if (t.dtype !== 'float32') continue;
      const u = b.graph.initializers.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, k) => {
        assert.ok(
          Math.abs(v - u[k]!) <= 1e-6 * Math.max(1, Math.abs(v)),
          `${name}[${k}] ${v} vs ${u[k]}`,
        );
      });
    }
  });

  test('repeated --images merge folders: the same fit as one folder holding them all', async () => {
    const parts = [join(dir, 'part-a'), join(dir, 'part-b')];
    for (const [k, p] of parts.entries()) {
      mkdirSync(p);
      for (let i = k * 12; i < (k + 1) * 12; i++)
        copyFileSync(join(images, `img${i}.png`), join(p, `img${i}.png`));
    }
    const r = run(
      'fit',
      model,
      '--images',
      parts[0]!,
      '--images',
      parts[1]!,
      '--out',
      join(dir, 'parts.onnx'),
      '--json',
    );
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { images: number }).images, 24);
    const a = await readModel(join(dir, 'fused.onnx'));
    const b = await readModel(join(dir, 'parts.onnx'));
    let changed = 0;
    const orig = await readModel(model);
    for (const [name, t] of a.graph.initializers) {
      if (t.dtype !== 'float32') continue;
      const u = b.graph.initializers.get(name)!.data as Float32Array;
      const o = orig.graph.initializers.get(name)!.data as Float32Array;
      (t.data as Float32Array).forEach((v, k) => {
        assert.ok(Math.abs(v - u[k]!) <= 1e-6 * Math.max(1, Math.abs(v)), `${name}[${k}]`);
        if (u[k] !== o[k]) changed++;
      });
    }
    assert.ok(changed > 0, 'the fit changed no weight');
  });

  test('convert then fuse reproduce what verify expects; inspect lists the layers', () => {
    const c = run(
      'convert',
      model,
      '--out',
      join(dir, 'init.safetensors'),
      '--layers',
      'mlp',
      '--json',
    );
    assert.equal(c.code, 0, c.err);
    assert.equal((JSON.parse(c.out) as { layers: unknown[] }).layers.length, 4);
    const f = run(
      'fuse',
      model,
      '--denoisers',
      join(dir, 'init.safetensors'),
      '--out',
      join(dir, 'f2.onnx'),
    );
    assert.equal(f.code, 0, f.err);
    const v = run(
      'verify',
      model,
      '--fused',
      join(dir, 'f2.onnx'),
      '--denoisers',
      join(dir, 'init.safetensors'),
      '--images',
      images,
      '--skip-corrupt',
      '--runs',
      '2',
    );
    assert.equal(v.code, 0, v.err);
    const i = run('inspect', model, '--timesteps', 'public-code', '--json');
    const { layers } = JSON.parse(i.out) as { layers: { layer: string; t: number }[] };
    const t = Object.fromEntries(layers.map((l) => [l.layer, l.t]));
    assert.equal(t['blocks.0.attn.qkv'], layers.length);
    assert.equal(t['blocks.0.attn.proj'], layers.length - 1);
  });

  test('bad input: one clear line, exit code, nothing written over the input', () => {
    const before = readFileSync(model);
    const over = run('fit', model, '--images', images, '--skip-corrupt', '--out', model);
    assert.equal(over.code, 1);
    assert.match(over.err, /refusing to overwrite/);
    assert.deepEqual(readFileSync(model), before);

    const size = run(
      'fit',
      model,
      '--images',
      images,
      '--out',
      join(dir, 'x.onnx'),
      '--size',
      '16',
    );
    assert.equal(size.code, 1);
    assert.match(size.err, /--size 16,16 does not match .*8x8/);

    const filter = run('inspect', model, '--layers', 'nothing.*');
    assert.equal(filter.code, 1);
    assert.match(filter.err, /--layers 'nothing\.\*' matches none/);

    const corrupt = run('fit', model, '--images', images, '--out', join(dir, 'y.onnx'));
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.err, /broken\.png/);

    // A model with no MatMul/Gemm/Conv weight.
    const b = new GraphBuilder();
    b.output(b.relu(b.input('input', 'float32', ['N', 1, 8, 8])), 'y');
    writeModel(join(dir, 'relu.onnx'), b.build().model);
    const none = run('inspect', join(dir, 'relu.onnx'));
    assert.equal(none.code, 2);
    assert.match(none.err, /no selectable layer/);
    for (const r of [over, size, filter, corrupt, none])
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
  });

  test('no command writes over an input or into a missing folder: exit 1, one line, both flags', () => {
    const before = readFileSync(model);
    const d = join(dir, 'd.safetensors'); // written by the first test
    const denoisers = readFileSync(d);
    const cases: [string[], RegExp][] = [
      [['fuse', model, '--denoisers', d, '--out', d], /--out .* is the same file as --denoisers/],
      [['convert', model, '--out', model], /--out .* is the same file as <model>/],
      [
        ['convert', model, '--out', join(dir, 'c.st'), '--graph-out', model],
        /--graph-out .* is the same file as <model>/,
      ],
      [
        ['fit', model, '--images', images, '--out', join(dir, 'no', 'f.onnx')],
        /--out .*f\.onnx: folder .*no does not exist/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = run(...args);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, pattern);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    assert.deepEqual(readFileSync(model), before);
    assert.deepEqual(readFileSync(d), denoisers);
    assert.equal(existsSync(join(dir, 'c.st')), false);
  });
});
