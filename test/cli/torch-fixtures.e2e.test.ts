// The commands a user runs on a model exported by PyTorch, on each of the exported fixture
// family (test/fixtures/torch/, scripts/torch-fixtures.py): inspect lists the layers and
// every skipped candidate with its reason; fit fits, fuses and verifies; verify passes
// at relative error <= 1e-4 with the nodes in the same order; export-weights gives the
// PyTorch state_dict's names and shapes back from the fused model.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { exportTorchWeights } from '../../src/denoise/export-weights.js';
import { planConversion } from '../../src/denoise/plan.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { readModel } from '../../src/onnx/serialize.js';
import { Rng } from '../../src/util/rng.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = join(repo, 'test', 'fixtures', 'torch');
const cli = join(repo, 'src', 'cli', 'index.ts');
const tsx = import.meta.resolve('tsx');
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-torchcli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const images = join(dir, 'images');

/** Runs the CLI as a user does (asynchronously, so several cases can run side by side). */
function run(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ['--import', tsx, cli, ...args, '--threads', '1'], {
      cwd: dir,
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => done({ code, out, err }));
  });
}

before(async () => {
  // 24 random 16x16 RGB images (every fixture takes 16x16 RGB input).
  mkdirSync(images);
  const rng = new Rng(2);
  for (let i = 0; i < 24; i++) {
    const px = Buffer.from(
      Array.from({ length: 16 * 16 * 3 }, () => Math.floor(rng.uniform() * 256)),
    );
    await sharp(px, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toFile(join(images, `img${i}.png`));
  }
});

const CASES: { name: string; untie?: boolean }[] = [
  { name: 'mobilenetv3-opset17' },
  { name: 'convnext-opset17' },
  { name: 'swin-opset17' },
  { name: 'fpn-opset17' },
  { name: 'encoder-opset17' },
  { name: 'encoder-opset17', untie: true },
  { name: 'tied-opset17' },
  { name: 'tied-opset17', untie: true },
];

describe('inspect, fit, verify, export-weights on PyTorch exports', { concurrency: 4 }, () => {
  for (const c of CASES) {
    const tag = `${c.name}${c.untie ? '-untie' : ''}`;
    test(tag, async () => {
      const onnx = join(fixtures, `${c.name}.onnx`);
      const untie = c.untie ? ['--untie'] : [];
      const model = await readModel(onnx);
      const plan = planConversion(model.graph, { filter: 'all', untie: c.untie });

      const i = await run('inspect', onnx, '--json', ...untie);
      assert.equal(i.code, 0, i.err);
      const inspected = JSON.parse(i.out) as { layers: { layer: string }[]; skipped: unknown };
      assert.deepEqual(
        inspected.layers.map((l) => l.layer),
        plan.layers.map((p) => p.layer.name),
      );
      assert.deepEqual(inspected.skipped, plan.skipped);

      const fused = join(dir, `${tag}.onnx`);
      const den = join(dir, `${tag}-d.safetensors`);
      const f = await run(
        'fit',
        onnx,
        '--images',
        images,
        '--out',
        fused,
        '--denoisers-out',
        den,
        '--batch-size',
        '8',
        '--json',
        ...untie,
      );
      assert.equal(f.code, 0, f.err);
      const fit = JSON.parse(f.out) as {
        layers: number;
        verification: { ok: boolean; maxRelOutput: number; maxRelLayer: number };
        skippedLayers: unknown;
        untiedParameters: number;
        copies: { copy: string }[];
      };
      assert.equal(fit.layers, plan.layers.length);
      assert.equal(fit.verification.ok, true);
      assert.ok(fit.verification.maxRelOutput <= 1e-4 && fit.verification.maxRelLayer <= 1e-4);
      assert.deepEqual(fit.skippedLayers, plan.skipped);
      assert.ok(
        !c.untie || fit.untiedParameters > 0,
        'untie fused tied layers without adding parameters',
      );

      const fm = await readModel(fused);
      assert.deepEqual(
        fm.graph.nodes.map((n) => [n.name, n.opType]),
        model.graph.nodes.map((n) => [n.name, n.opType]),
      );
      // The only initializers added are the reported copies.
      assert.deepEqual(
        [...fm.graph.initializers.keys()].filter((k) => !model.graph.initializers.has(k)).sort(),
        fit.copies.map((k) => k.copy).sort(),
      );

      const v = await run(
        'verify',
        onnx,
        '--fused',
        fused,
        '--denoisers',
        den,
        '--images',
        images,
        '--batch',
        '8',
        '--runs',
        '1',
        '--json',
      );
      assert.equal(v.code, 0, v.err);
      const ver = JSON.parse(v.out) as {
        ok: boolean;
        topology: { identical: boolean };
        outputs: { name: string; maxRel: number }[];
        layers: { name: string; maxRel: number }[];
      };
      assert.equal(ver.ok, true);
      assert.equal(ver.topology.identical, true);
      for (const e of [...ver.outputs, ...ver.layers]) assert.ok(e.maxRel <= 1e-4, e.name);
      assert.equal(ver.layers.length, plan.layers.length);

      const out = join(dir, `${tag}-w.safetensors`);
      const e = await run('export-weights', fused, '--out', out, '--json');
      assert.equal(e.code, 0, e.err);
      const got = readSafetensors(out).tensors;
      const want = exportTorchWeights(model).tensors;
      const state = readSafetensors(join(fixtures, `${c.name}.safetensors`)).tensors;
      assert.deepEqual(
        [...got].map(([k, t]) => [k, t.dims]).sort(),
        [...want].map(([k, t]) => [k, t.dims]).sort(),
      );
      for (const [k, t] of got) assert.deepEqual(t.dims, state.get(k)!.dims, k);
      assert.ok(
        [...got].some(([k, t]) => t.data.some((x, j) => x !== state.get(k)!.data[j])),
        'no exported value changed',
      );
      if (c.name.startsWith('tied') && c.untie)
        assert.match((JSON.parse(e.out) as { notes: string[] }).notes.join('\n'), /fusion untied/);
    });
  }
});
