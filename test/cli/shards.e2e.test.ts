// Many machines: the README's recipe, run as written. Three shard processes (as the pods
// of a Kubernetes Indexed Job: each reads its index from JOB_COMPLETION_INDEX) each write
// the statistics of every third image, at the same time; the merge sums them, fits, fuses
// and verifies. The fused model equals the one-pass fit to float rounding: the moments
// are float64 sums grouped differently (per shard, then across shards), so they differ in
// their last bits, and a few fused float32 weights round to the neighbouring value.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readModel } from '../../src/onnx/serialize.js';
import { Rng } from '../../src/util/rng.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const model = join(repo, 'test', 'fixtures', 'torch', 'vit-opset17.onnx');
const tsx = import.meta.resolve('tsx');
/** What `denoiserep` stands for in the recipe. */
const DENOISEREP = `"${process.execPath}" --import "${tsx}" "${join(repo, 'src', 'cli', 'index.ts')}"`;
const dir = mkdtempSync(join(tmpdir(), 'denoiserep-shards-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const images = join(dir, 'images');
const stats = join(dir, 'stats');
const SHARDS = 3;

/** Runs one shell line, with extra environment variables. */
function sh(
  line: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn('sh', ['-c', line], { cwd: dir, env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => done({ code, out, err }));
  });
}

before(async () => {
  mkdirSync(images);
  mkdirSync(stats);
  const rng = new Rng(4);
  for (let i = 0; i < 30; i++) {
    const px = Buffer.from(
      Array.from({ length: 16 * 16 * 3 }, () => Math.floor(rng.uniform() * 256)),
    );
    await sharp(px, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toFile(join(images, `img${i}.png`));
  }
});

describe('fit --shard i/n on many machines, merged with --from-stats', () => {
  test('3 shard processes and the merge give the one-pass fused model', async (t) => {
    const common = `"${model}" --images "${images}" --batch-size 8 --threads 1`;
    // The Indexed Job's pod command (README), once per completion index, all at once.
    const shardLine = `${DENOISEREP} fit ${common} --shard "$JOB_COMPLETION_INDEX/${SHARDS}" --stats-out "${stats}/s_$JOB_COMPLETION_INDEX.bin"`;
    const runs = await Promise.all(
      Array.from({ length: SHARDS }, (_, i) => sh(shardLine, { JOB_COMPLETION_INDEX: String(i) })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.err);
    const merge = await sh(
      `${DENOISEREP} fit ${common} --from-stats "$(ls "${stats}"/s_*.bin | paste -sd, -)" --out merged.onnx --json`,
    );
    assert.equal(merge.code, 0, merge.err);
    assert.equal(
      (JSON.parse(merge.out) as { verification: { ok: boolean } }).verification.ok,
      true,
    );
    const one = await sh(`${DENOISEREP} fit ${common} --out one.onnx --json`);
    assert.equal(one.code, 0, one.err);

    const a = await readModel(join(dir, 'one.onnx'));
    const b = await readModel(join(dir, 'merged.onnx'));
    const orig = await readModel(model);
    let changed = 0;
    let identical = 0;
    let total = 0;
    for (const [name, t] of a.graph.initializers) {
      if (t.dtype !== 'float32') continue;
      const u = b.graph.initializers.get(name)!.data as Float32Array;
      const o = orig.graph.initializers.get(name)!.data as Float32Array;
      const x = t.data as Float32Array;
      const scale = Math.max(...Array.from(x, Math.abs), 1e-30);
      for (let k = 0; k < x.length; k++) {
        assert.ok(
          Math.abs(x[k]! - u[k]!) <= 1e-6 * scale,
          `${name}[${k}]: one pass ${x[k]} vs merged ${u[k]}`,
        );
        total++;
        if (x[k] === u[k]) identical++;
        if (x[k] !== o[k]) changed++;
      }
    }
    let maxRel = 0;
    for (const [name, x] of a.graph.initializers) {
      if (x.dtype !== 'float32') continue;
      const u = b.graph.initializers.get(name)!.data as Float32Array;
      const xs = x.data as Float32Array;
      const scale = Math.max(...Array.from(xs, Math.abs), 1e-30);
      for (let k = 0; k < xs.length; k++)
        maxRel = Math.max(maxRel, Math.abs(xs[k]! - u[k]!) / scale);
    }
    t.diagnostic(
      `${identical} of ${total} float32 values bit-identical, max relative difference ${maxRel.toExponential(2)}`,
    );
    assert.ok(changed > 1000, `the fit changed only ${changed} weights`);
    // Most values come out bit-identical; the rest differ in the last place.
    assert.ok(identical > 0.5 * total, `${identical} of ${total} bit-identical`);
  });

  test('a shard missing or given twice is refused before fitting', async () => {
    const files = (ks: number[]) => ks.map((k) => `${stats}/s_${k}.bin`).join(',');
    const missing = await sh(
      `${DENOISEREP} fit "${model}" --from-stats ${files([0, 2])} --out x.onnx`,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.err, /shard 1\/3 missing \(2 of 3 files given\)/);
    const twice = await sh(
      `${DENOISEREP} fit "${model}" --from-stats ${files([0, 1, 1, 2])} --out x.onnx`,
    );
    assert.equal(twice.code, 2);
    assert.match(twice.err, /both shard 1\/3/);
  });
});
