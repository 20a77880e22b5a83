// `denoiserep pretrain` and `denoiserep eval` end to end, spawned as the user runs them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { runHere } from './run-here.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(repo, 'src', 'cli', 'index.ts');
// Resolved here: the children run in a temp folder, where the bare name 'tsx' does not resolve.
const tsx = import.meta.resolve('tsx');
const cwd = mkdtempSync(join(tmpdir(), 'denoiserep-cli-'));
after(() => rmSync(cwd, { recursive: true, force: true }));

/** Runs the CLI in a child process, as a user does. */
function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', tsx, cli, ...args], {
    cwd,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const train = ['--model', 'mlp-fmnist', '--data', 'embedded', '--batch-size', '128'];
const common = ['--lr', '3e-3', '--warmup-epochs', '0.2', '--threads', '2', '--json'];

describe('CLI pretrain and eval', () => {
  let final: { acc1: number; mAP: number };

  test('pretrain writes checkpoint, log and model.onnx and prints JSON', () => {
    const r = run('pretrain', ...train, '--epochs', '2', ...common, '--out', 'mlp');
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as {
      epochs: number;
      final: { epoch: number; loss: number; eval: { acc1: number; mAP: number } };
    };
    assert.equal(res.epochs, 2);
    assert.equal(res.final.epoch, 1);
    assert.ok(res.final.eval.acc1 > 0.7, `acc@1 ${res.final.eval.acc1}`);
    final = res.final.eval;
    for (const f of [
      'model.onnx',
      'log.jsonl',
      'checkpoint/weights.safetensors',
      'checkpoint/state.json',
    ]) {
      assert.ok(existsSync(join(cwd, 'mlp', f)), f);
    }
    const lines = readFileSync(join(cwd, 'mlp', 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    const steps = lines.filter((l) => l.kind === 'step');
    // 10,000 training images in batches of 128: 79 steps per epoch.
    assert.equal(steps.length, 2 * 79);
    assert.deepEqual(
      steps.map((s) => s.step),
      Array.from({ length: 158 }, (_, i) => i + 1),
    );
    assert.ok(steps.every((s) => Number(s.imagesPerSecond) > 0 && Number.isFinite(s.loss)));
    assert.equal(lines.filter((l) => l.kind === 'epoch').length, 2);
  });

  test('eval of model.onnx and of the checkpoint reproduce the last epoch metrics', async () => {
    const a = run('eval', join('mlp', 'model.onnx'), '--data', 'embedded', '--json');
    assert.equal(a.code, 0, a.err);
    const ra = JSON.parse(a.out) as { acc1: number; images: number; acc1Ci95: number[] };
    assert.equal(ra.images, 2000);
    // A 95% Wilson interval over the 2,000 images brackets acc@1.
    assert.ok(ra.acc1Ci95[0]! < ra.acc1 && ra.acc1 < ra.acc1Ci95[1]!, String(ra.acc1Ci95));
    // --json reports percent.
    assert.equal(ra.acc1, Number((100 * final.acc1).toPrecision(12)));
    const b = await runHere('eval', join(cwd, 'mlp'), '--task', 'retrieval', '--json');
    assert.equal(b.code, 0, b.err);
    const rb = JSON.parse(b.out) as {
      mAP: number;
      rank1: number;
      validQueries: number;
      acc1Ci95?: number[];
    };
    assert.equal(rb.acc1Ci95, undefined, 'retrieval has no acc@1 to bracket');
    // eval prints percentages to 12 significant digits.
    assert.equal(rb.mAP, Number((100 * final.mAP).toPrecision(12)));
    assert.equal(rb.validQueries, 200);
    assert.ok(rb.rank1 > 50 && rb.rank1 <= 100);
  });

  test('--resume refuses changed settings, naming the flags; --override extends the run', async () => {
    const resume = (...extra: string[]) =>
      runHere(
        'pretrain',
        ...train,
        '--epochs',
        '3',
        ...common,
        '--out',
        join(cwd, 'mlp'),
        '--resume',
        '--eval-every',
        '0',
        ...extra,
      );
    const refused = await resume('--lr', '1e-3');
    assert.equal(refused.code, 1);
    assert.match(refused.err, /--epochs 2 -> 3, --lr 0\.003 -> 0\.001; pass --override/);
    const r = await resume('--override');
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as { epochs: number; final: { epoch: number } };
    assert.equal(res.epochs, 3);
    assert.equal(res.final.epoch, 2);
    const state = JSON.parse(
      readFileSync(join(cwd, 'mlp', 'checkpoint', 'state.json'), 'utf8'),
    ) as { epoch: number; globalStep: number };
    assert.equal(state.epoch, 2);
    assert.equal(state.globalStep, 3 * 79);
    // The log holds each step once, in order, across the resume.
    const steps = readFileSync(join(cwd, 'mlp', 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; step: number })
      .filter((l) => l.kind === 'step')
      .map((l) => l.step);
    assert.deepEqual(
      steps,
      Array.from({ length: 3 * 79 }, (_, i) => i + 1),
    );
  });

  test('pretrain --lr 1e6 stops at the first non-finite loss, exit 2, naming step and parameter', async () => {
    const r = await runHere(
      'pretrain',
      ...train,
      '--epochs',
      '1',
      '--lr',
      '1e6',
      '--warmup-epochs',
      '0',
      '--checkpoint-every',
      '1',
      '--json',
      '--out',
      join(cwd, 'diverged'),
    );
    assert.equal(r.code, 2, r.err);
    const m =
      /training stopped at step (\d+) \(epoch 0, phase backbone\): .*'([\w.]+)'.*the last checkpoint \(step (\d+)\) is kept/.exec(
        r.err,
      );
    assert.ok(m, r.err);
    assert.equal(Number(m[3]), Number(m[1]) - 1);
    const state = JSON.parse(
      readFileSync(join(cwd, 'diverged', 'checkpoint', 'state.json'), 'utf8'),
    ) as { globalStep: number };
    assert.equal(state.globalStep, Number(m[3]));
    // The kept checkpoint reads back (sizes and hashes match) and holds finite weights.
    const ck = loadCheckpoint(join(cwd, 'diverged'));
    for (const [name, t] of ck.tensors)
      assert.ok((t.data as Float32Array).every(Number.isFinite), name);
  });

  test('--init starts a new schedule from the weights of a trained run', async () => {
    const stepLosses = (dir: string) =>
      readFileSync(join(cwd, dir, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; loss: number; step: number })
        .filter((l) => l.kind === 'step');
    const r = await runHere(
      'pretrain',
      ...train,
      '--epochs',
      '1',
      ...common,
      '--lr',
      '1e-4',
      '--eval-every',
      '0',
      '--out',
      join(cwd, 'mlp-ft'),
      '--init',
      join(cwd, 'mlp'),
    );
    assert.equal(r.code, 0, r.err);
    const ft = stepLosses('mlp-ft');
    const fresh = stepLosses('mlp');
    // The trained weights start far below a fresh initialisation's loss (ln 10 ≈ 2.3),
    // and the schedule starts again at step 1.
    assert.equal(ft[0]!.step, 1);
    assert.ok(ft[0]!.loss < 0.8 * fresh[0]!.loss, `${ft[0]!.loss} vs ${fresh[0]!.loss}`);
    const state = JSON.parse(
      readFileSync(join(cwd, 'mlp-ft', 'checkpoint', 'state.json'), 'utf8'),
    ) as { globalStep: number };
    assert.equal(state.globalStep, 79);

    const wrong = await runHere(
      'pretrain',
      '--model',
      'resnet-tiny-fmnist',
      '--epochs',
      '1',
      '--out',
      join(cwd, 'x'),
      '--init',
      join(cwd, 'mlp'),
    );
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /holds a mlp-fmnist checkpoint, not resnet-tiny-fmnist/);
    const both = await runHere(
      'pretrain',
      ...train,
      '--out',
      join(cwd, 'x'),
      '--init',
      join(cwd, 'mlp'),
      '--resume',
    );
    assert.equal(both.code, 1);
    assert.match(both.err, /--init and --resume/);
  });

  test('finetune: label-augmented DenoiseRep on a pretrain checkpoint, fused and verifiable', async () => {
    const out = join(cwd, 'mlp-la');
    const r = await runHere(
      'finetune',
      join(cwd, 'mlp'),
      '--data',
      'embedded',
      '--epochs',
      '2',
      '--phase-epochs',
      '1',
      '--threads',
      '2',
      '--out',
      out,
      '--json',
    );
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as {
      layers: number;
      task: string;
      before: { acc1: number };
      after: { acc1: number };
      history: { phase: string }[];
    };
    assert.equal(res.task, 'classification');
    assert.equal(res.layers, 3); // mlp-fmnist: fc1, fc2, head
    assert.deepEqual(
      res.history.map((h) => h.phase),
      ['denoisers', 'backbone'],
    );
    assert.ok(res.after.acc1 > 0.7 && res.before.acc1 > 0.7);
    const v = await runHere(
      'verify',
      join(out, 'backbone.onnx'),
      '--fused',
      join(out, 'fused.onnx'),
      '--denoisers',
      join(out, 'denoisers.safetensors'),
      '--data',
      'embedded',
      '--runs',
      '2',
      '--json',
    );
    assert.equal(v.code, 0, v.err);
    const vr = JSON.parse(v.out) as { ok: boolean; topology: { identical: boolean } };
    assert.ok(vr.ok && vr.topology.identical);
    const bad = await runHere('finetune', join(cwd, 'mlp'), '--task', 'detect', '--out', out);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /--task/);
  });

  test('bad flags exit with code 1 and name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['pretrain', ...train, '--epochs', 'two', '--out', 'x'], /--epochs/],
      [['pretrain', ...train, '--optimizer', 'adam', '--out', 'x'], /--optimizer/],
      [['pretrain', ...train, '--task', 'detect', '--out', 'x'], /--task/],
      [['pretrain', '--model', 'no-such-net', '--out', 'x'], /no-such-net/],
      [['eval', join(cwd, 'mlp', 'model.onnx'), '--task', 'ranking'], /--task/],
      [['pretrain', ...train, '--epochs', '1', '--out', 'x', '--lr', 'fast'], /--lr/],
    ];
    for (const [args, re] of cases) {
      const r = await runHere(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
    }
    // A missing input (data folder, model file) is bad data or model: exit code 2.
    const d = await runHere('eval', join(cwd, 'mlp'), '--data', join(cwd, 'missing-folder'));
    assert.equal(d.code, 2);
    assert.match(d.err, /missing-folder/);
    const c = await runHere('eval', join(cwd, 'no-model.onnx'));
    assert.equal(c.code, 2);
    assert.match(c.err, /no-model\.onnx/);
  });
});
