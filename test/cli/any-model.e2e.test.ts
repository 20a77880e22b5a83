// inspect, fit, fuse and verify, spawned as a user runs them, on a model with a contrib op
// (com.microsoft.FastGelu) and a model-local function (custom.Swish) that the shape rules
// cannot type: ONNX Runtime supplies the shapes, the commands go through, and the fused
// model keeps the function and the contrib node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readModel } from '../../src/onnx/serialize.js';
import { Rng } from '../../src/util/rng.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'src', 'cli', 'index.ts');
const tsx = import.meta.resolve('tsx');
const model = join(repo, 'test', 'fixtures', 'onnx', 'contrib-function.onnx');
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-anymodel-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', tsx, cli, ...args, '--threads', '1'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

before(async () => {
  // The model takes 8x8 RGB images: 12 seeded random ones.
  mkdirSync(join(dir, 'images'));
  const rng = new Rng(3);
  for (let i = 0; i < 12; i++) {
    const px = Buffer.from(Array.from({ length: 192 }, () => Math.floor(rng.uniform() * 256)));
    await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `img${i}.png`));
  }
});

test('inspect lists the layers before and after the contrib op and the function', () => {
  const r = run('inspect', model, '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { selected: number; layers: { layer: string; flops: number }[] };
  assert.deepEqual(
    j.layers.map((l) => l.layer),
    ['stem', 'fc1', 'head'],
  );
  // fc1 sees the pooled 8 features after FastGelu and Swish: 2·8·8 FLOPs per image.
  assert.equal(j.layers[1]!.flops, 128);
});

test('fit, then fuse from the denoisers, then verify: same model, all pass', async () => {
  const fit = run(
    'fit',
    model,
    '--images',
    'images',
    '--out',
    'fused.onnx',
    '--denoisers-out',
    'd.safetensors',
  );
  assert.equal(fit.code, 0, fit.err);
  const fuse = run('fuse', model, '--denoisers', 'd.safetensors', '--out', 'fused2.onnx');
  assert.equal(fuse.code, 0, fuse.err);
  const verify = run(
    'verify',
    model,
    '--fused',
    'fused2.onnx',
    '--denoisers',
    'd.safetensors',
    '--images',
    'images',
    '--json',
  );
  assert.equal(verify.code, 0, verify.err);
  const v = JSON.parse(verify.out) as { ok: boolean };
  assert.equal(v.ok, true);
  // The fused model keeps the function and the contrib node, in the original order.
  const orig = await readModel(model);
  const fused = await readModel(join(dir, 'fused2.onnx'));
  assert.deepEqual(fused.functions, orig.functions);
  assert.deepEqual(
    fused.graph.nodes.map((n) => [n.domain, n.opType]),
    orig.graph.nodes.map((n) => [n.domain, n.opType]),
  );
});
