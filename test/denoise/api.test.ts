// The one-call API (`fit`, `verify`, `inspect`), called as a library user calls it, on a
// model file and a folder of generated images: the reports, the files, bad options as
// typed errors, and every known way an output could clobber an input refused before any
// work (the list: --denoisers-out, --report, --stats-out and --out on an input,
// two outputs on one file, a hard link and a symlink to the input, a missing folder).
import assert from 'node:assert/strict';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { fit, type FitOptions, inspect, verify } from '../../src/denoise/api/index.js';
import type { ProgressEvent } from '../../src/denoise/pipeline.js';
import { buildBackbone, getPreset } from '../../src/models/registry.js';
import { readModel, writeModel } from '../../src/onnx/serialize.js';
import { UsageError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'm.onnx');
const images = join(dir, 'images');
const at = (f: string) => join(dir, f);

before(async () => {
  writeModel(
    model,
    buildBackbone(getPreset('vit-micro', { numClasses: 3 }), 'eval', 0).b.build().model,
  );
  mkdirSync(images);
  const rng = new Rng(4);
  for (let i = 0; i < 24; i++) {
    const px = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rng.uniform() * 256)));
    await sharp(px, { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toFile(join(images, `img${i}.png`));
  }
  writeFileSync(join(images, 'broken.png'), 'not an image');
});

describe('one-call API', () => {
  test('fit fits, fuses, verifies and writes; verify accepts the result; inspect agrees', async () => {
    const events: ProgressEvent[] = [];
    const report = await fit(model, {
      images,
      skipCorrupt: true,
      out: at('fused.onnx'),
      denoisersOut: at('d.safetensors'),
      report: at('r.json'),
      layers: 'mlp',
      batchSize: 8,
      threads: 1,
      onProgress: (e) => events.push(e),
    });
    assert.equal(report.kind, 'fused');
    assert.equal(report.images, 24);
    assert.equal(report.skipped, 1);
    assert.equal(report.verification!.ok, true);
    assert.ok(report.verification!.maxRelLayer < 1e-4);
    const plan = await inspect(model, { layers: 'mlp' });
    assert.deepEqual(
      report.layers.map((l) => [l.layer, l.t]),
      plan.layers.map((l) => [l.layer, l.t]),
    );
    for (const l of report.layers) assert.ok(l.lossAfter! < l.lossBefore!, l.layer);
    const stats = events.filter((e) => e.stage === 'statistics');
    assert.deepEqual(stats.at(-1), { stage: 'statistics', done: 24, total: 24 });
    assert.deepEqual(
      (JSON.parse(readFileSync(at('r.json'), 'utf8')) as { layers: unknown }).layers,
      report.layers,
    );
    assert.ok(existsSync(at('r.svg')) && existsSync(at('r.png')));

    const v = await verify(model, {
      fused: at('fused.onnx'),
      denoisers: at('d.safetensors'),
      images,
      skipCorrupt: true,
      runs: 1,
      threads: 1,
    });
    assert.ok(v.ok, v.failures.join('; '));
    assert.equal(v.layers.length, report.layers.length);
    assert.equal(v.latency.length, 2);
  });

  test('shards written, then summed: the same fused weights as one pass', async () => {
    for (const index of [0, 1]) {
      const r = await fit(model, {
        images,
        skipCorrupt: true,
        layers: 'mlp',
        shard: { index, count: 2 },
        statsOut: at(`s${index}.bin`),
        threads: 1,
      });
      assert.equal(r.kind, 'statistics');
      assert.equal(r.shard, `${index}/2`);
    }
    const merged = await fit(model, {
      fromStats: [at('s0.bin'), at('s1.bin')],
      layers: 'mlp',
      out: at('merged.onnx'),
      threads: 1,
    });
    assert.equal(merged.verification, undefined); // no images to verify on
    const one = await fit(model, {
      images,
      skipCorrupt: true,
      layers: 'mlp',
      out: at('one.onnx'),
      threads: 1,
    });
    const a = await readModel(at('merged.onnx'));
    const b = await readModel(at('one.onnx'));
    for (const l of one.layers) {
      const name = `${l.layer}.weight`;
      const x = a.graph.initializers.get(name)!.data as Float32Array;
      const y = b.graph.initializers.get(name)!.data as Float32Array;
      x.forEach((u, k) => assert.ok(Math.abs(u - y[k]!) <= 1e-6 * Math.max(1, Math.abs(u))));
    }
  });

  test('workers: layers fitted on two worker threads give the model fitted on this one', async () => {
    const fused = async (workers: number) => {
      const out = at(`w${workers}.onnx`);
      await fit(model, { images, skipCorrupt: true, layers: 'all', out, threads: 1, workers });
      return (await readModel(out)).graph.initializers;
    };
    const here = await fused(0);
    const there = await fused(2);
    assert.deepEqual([...there.keys()], [...here.keys()]);
    for (const [name, t] of here) assert.deepEqual(there.get(name)!.data, t.data, name);
    await assert.rejects(
      fit(model, { images, out: at('x.onnx'), workers: -1 }),
      (e: unknown) => e instanceof UsageError && e.message.includes('--workers'),
    );
  });

  test('a noise scale and a timestep spread reach the plan, the fit and the denoiser file', async () => {
    const base = await inspect(model, { layers: 'mlp' });
    const k100 = await inspect(model, { layers: 'mlp', noiseScale: 100 });
    base.layers.forEach((l, i) => {
      const r = k100.layers[i]!.c1 / l.c1;
      // c1 grows about as √k at small t (1 − ᾱ ≈ kΣβ).
      assert.ok(r > 8 && r < 11, `${l.layer}: c1 ratio ${r}`);
    });
    const spread = await inspect(model, { layers: 'mlp', timesteps: 'linear:40:10' });
    assert.equal(spread.layers[0]!.t, 40);
    assert.equal(spread.layers.at(-1)!.t, 10);
    const report = await fit(model, {
      images,
      skipCorrupt: true,
      out: at('fused-k100.onnx'),
      denoisersOut: at('d-k100.safetensors'),
      layers: 'mlp',
      noiseScale: 100,
      timesteps: 'linear:40:10',
      batchSize: 8,
      threads: 1,
    });
    assert.equal(report.verification!.ok, true);
    assert.deepEqual(
      report.layers.map((l) => l.t),
      spread.layers.map((l) => l.t),
    );
    // verify rebuilds the plan from the denoiser file: the same (scaled) schedule.
    const v = await verify(model, {
      fused: at('fused-k100.onnx'),
      denoisers: at('d-k100.safetensors'),
      images,
      skipCorrupt: true,
      runs: 1,
      threads: 1,
    });
    assert.ok(v.ok, v.failures.join('; '));
    await assert.rejects(
      inspect(model, { timesteps: 'linear:5' as FitOptions['timesteps'] }),
      (e) => e instanceof UsageError && /--timesteps/.test(e.message),
    );
    await assert.rejects(
      fit(model, { images, out: at('x.onnx'), noiseScale: -1, threads: 1 }),
      (e) => e instanceof UsageError && /--noise-scale/.test(e.message),
    );
  });

  test('bad options are UsageErrors naming the flag, raised before any work', async () => {
    const base: FitOptions = { images, out: at('bad.onnx'), threads: 1 };
    const cases: [Partial<FitOptions> & Record<string, unknown>, RegExp][] = [
      [{ batchSize: 0 }, /^--batch-size must be an integer in \[1, 65536\], got '0'$/],
      // The command line's ranges (src/util/ranges.ts) hold for the one-call function too.
      [{ epochs: 1e12 }, /^--epochs must be an integer in \[1, 10000\], got '1000000000000'$/],
      [{ seed: 1e30 }, /^--seed must be an integer in \[0, 2\^53-1\]/],
      [{ threads: 100_000 }, /^--threads must be an integer in \[1, \d+\], got '100000'$/],
      [{ tolerance: 0 }, /^--tolerance must be a number in \(0, 1\]/],
      [{ std: [1, 0, 1] }, /^--std must be a number in \(0, 1000\], got '0'$/],
      [{ size: [28, 28, 28] }, /^--size takes 1 to 2 numbers/],
      [{ mode: 'fast' as FitOptions['mode'] }, /^--mode must be closed-form or sgd/],
      [{ out: undefined }, /^--out <file> is required$/],
      [{ shard: '2/2', statsOut: at('s.bin') }, /^--shard 2\/2: need 0 <= i < n$/],
      [{ fromStats: [at('s0.bin')], mode: 'sgd' }, /--from-stats works with --mode closed-form/],
      [{ lr: Number.NaN }, /^--lr must be a number/],
      [{ images: undefined }, /--images <dir> or --data <src> is required/],
    ];
    for (const [extra, pattern] of cases) {
      let progressed = false;
      await assert.rejects(
        fit(model, { ...base, ...extra, onProgress: () => (progressed = true) }),
        (e) => e instanceof UsageError && pattern.test(e.message),
        pattern.source,
      );
      assert.equal(progressed, false);
    }
    await assert.rejects(
      verify(model, { fused: '', denoisers: at('d.safetensors'), images }),
      (e) => e instanceof UsageError && /--fused <file> is required/.test(e.message),
    );
    assert.equal(existsSync(at('bad.onnx')), false);
  });

  test('no output may be an input or another output: refused naming both flags, before any work', async () => {
    const original = readFileSync(model);
    linkSync(model, at('hard.onnx'));
    symlinkSync(model, at('sym.onnx'));
    writeFileSync(at('stats.bin'), 'statistics');
    const before = readdirSync(dir).sort();
    const cases: [FitOptions, RegExp][] = [
      [
        { out: at('o1.onnx'), denoisersOut: model },
        /^--denoisers-out .* is the same file as <model>/,
      ],
      [{ out: at('o2.onnx'), report: model }, /^--report .* is the same file as <model>/],
      [{ shard: '1/2', statsOut: model }, /^--stats-out .* is the same file as <model>/],
      [{ fromStats: at('stats.bin'), out: at('stats.bin') }, /^--out .* same file as --from-stats/],
      [{ out: at('o.onnx'), denoisersOut: at('o.onnx') }, /^--out .*o\.onnx and --denoisers-out/],
      [{ out: at('hard.onnx') }, /^--out .*hard\.onnx is the same file as <model>/],
      [{ out: at('sym.onnx') }, /^--out .*sym\.onnx is the same file as <model>/],
      [{ out: at('r.svg'), report: at('r.json') }, /--out .*r\.svg and --report .*r\.svg/],
      [{ out: at('missing/f.onnx') }, /^--out .*: folder .*missing does not exist$/],
      [{ out: at('images') }, /^--out .*images is a folder/],
    ];
    for (const [o, pattern] of cases) {
      let progressed = false;
      await assert.rejects(
        fit(model, { images, threads: 1, ...o, onProgress: () => (progressed = true) }),
        (e) => e instanceof UsageError && pattern.test(e.message),
        pattern.source,
      );
      assert.equal(progressed, false, pattern.source);
    }
    assert.deepEqual(readFileSync(model), original);
    assert.deepEqual(readdirSync(dir).sort(), before);
  });
});
