// Checkpoints: one folder per checkpoint published by one rename of the `checkpoint` link,
// integrity checks, no non-finite values written, leftovers removed, the first layout read.
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataError, NonFiniteError } from '../../src/util/errors.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import {
  type CheckpointState,
  loadCheckpoint,
  removeCheckpointLeftovers,
  saveCheckpoint,
} from '../../src/train/checkpoint.js';
import { AdamW } from '../../src/train/optim.js';
import { ParamStore } from '../../src/models/params.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

function store(scale = 1): ParamStore {
  const s = new ParamStore();
  s.set('fc.weight', [2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-8, -7].map((v) => v * scale)));
  s.set('bn.running_var', [2], Float32Array.from([0.25, 4]));
  return s;
}

function state(epoch: number): CheckpointState {
  return {
    preset: 'resnet-micro',
    config: { lr: 0.01 },
    hyper: { lr: 0.01 },
    epoch,
    globalStep: 12 * (epoch + 1),
    rng: { seed: 3, base: [1, 2, 3, 4, null] },
    history: [{ epoch, loss: 0.5 }],
  };
}

/** An AdamW that took two steps on `s`, so that its moments are non-zero. */
function trainedOptimizer(s: ParamStore): AdamW {
  const opt = new AdamW(s, [{ name: 'all', params: ['fc.weight'] }]);
  for (const k of [1, 2])
    opt.step(new Map([['fc.weight', new Float32Array(6).fill(0.1 * k)]]), 0.01);
  return opt;
}

describe('checkpoints', () => {
  test('round trip: a link to one complete folder, tensors and optimiser bit-exact', () => {
    const run = join(root, 'run');
    saveCheckpoint(join(run, 'checkpoint'), store(2), state(1));
    const s = store();
    const opt = trainedOptimizer(s);
    saveCheckpoint(join(run, 'checkpoint'), s, state(2), {
      optimizers: { backbone: opt.snapshot() },
      tensors: { ema: store(3).toTensors() },
    });
    const ck = loadCheckpoint(run);
    assert.equal(ck.dir, join(run, 'checkpoint'));
    const { format, files, ...rest } = ck.state;
    assert.deepEqual(rest, state(2));
    assert.equal(format, 2);
    assert.deepEqual(Object.keys(files!).sort(), [
      'ema.safetensors',
      'optimizer.safetensors',
      'weights.safetensors',
    ]);
    assert.deepEqual(ck.tensors.get('fc.weight')!.data, s.get('fc.weight').data);
    assert.deepEqual(ck.extra.ema!.get('fc.weight')!.data, store(3).get('fc.weight').data);
    const back = ck.optimizers.backbone!;
    const want = opt.snapshot();
    assert.deepEqual(back.steps, want.steps);
    assert.equal(back.step, 2);
    assert.deepEqual(back.buffers.get('fc.weight'), want.buffers.get('fc.weight'));
    // The run folder holds the link and the one folder it names; the previous one is gone.
    assert.ok(lstatSync(join(run, 'checkpoint')).isSymbolicLink());
    assert.deepEqual(readdirSync(run).sort(), ['checkpoint', 'checkpoint-00000036']);
    assert.deepEqual(readdirSync(ck.dir).sort(), [
      'ema.safetensors',
      'optimizer.safetensors',
      'state.json',
      'weights.safetensors',
    ]);
    // The state is compact: the moments are in safetensors, not in the JSON.
    assert.ok(readFileSync(join(ck.dir, 'state.json'), 'utf8').length < 1000);
  });

  test('a non-finite tensor is refused before anything is written; the last checkpoint stays', () => {
    const run = join(root, 'nan');
    saveCheckpoint(join(run, 'checkpoint'), store(), state(0));
    const before = readdirSync(run).sort();
    const bad = store();
    bad.get('fc.weight').data[4] = Number.NaN;
    assert.throws(
      () => saveCheckpoint(join(run, 'checkpoint'), bad, state(1)),
      (e: unknown) =>
        e instanceof NonFiniteError &&
        e.detail.tensor === 'fc.weight' &&
        /'fc\.weight' \(weights\.safetensors\) holds NaN at index 4/.test(e.message),
    );
    const s = store();
    const opt = trainedOptimizer(s);
    const snap = opt.snapshot();
    snap.buffers.get('fc.weight')![1]![0] = Number.POSITIVE_INFINITY;
    assert.throws(
      () => saveCheckpoint(join(run, 'checkpoint'), s, state(1), { optimizers: { b: snap } }),
      /'b\/fc\.weight\/1' \(optimizer\.safetensors\) holds Infinity/,
    );
    assert.deepEqual(readdirSync(run).sort(), before);
    assert.equal(loadCheckpoint(run).state.epoch, 0);
  });

  test('a file that does not match its recorded size and SHA-256 is refused', () => {
    const run = join(root, 'flip');
    saveCheckpoint(join(run, 'checkpoint'), store(), state(0));
    const path = join(run, 'checkpoint', 'weights.safetensors');
    const bytes = readFileSync(path);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(path, bytes);
    assert.throws(
      () => loadCheckpoint(run),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(path) && /SHA-256/.test(e.message),
    );
  });

  test('leftovers of interrupted writes are removed, a live writer’s files are kept', () => {
    const run = join(root, 'left');
    saveCheckpoint(join(run, 'checkpoint'), store(), state(0));
    // A pid far above any pid_max: no such process.
    const dead = 4_194_999;
    mkdirSync(join(run, `.checkpoint-00000024.${dead}.tmp`));
    writeFileSync(join(run, `.checkpoint-00000024.${dead}.tmp`, 'weights.safetensors'), 'part');
    writeFileSync(join(run, `.checkpoint.${dead}.link.tmp`), '');
    mkdirSync(join(run, 'checkpoint-00000024')); // renamed, never published
    writeFileSync(join(run, `.model.onnx.${dead}.0.3.tmp`), 'partial');
    // The atomic writer of this very process on another thread may still be writing.
    const live = `.model.onnx.${process.pid}.99.1.tmp`;
    writeFileSync(join(run, live), 'in progress');
    writeFileSync(join(run, 'log.jsonl'), '');
    const removed = removeCheckpointLeftovers(join(run, 'checkpoint')).sort();
    assert.deepEqual(removed, [
      `.checkpoint-00000024.${dead}.tmp`,
      `.checkpoint.${dead}.link.tmp`,
      `.model.onnx.${dead}.0.3.tmp`,
      'checkpoint-00000024',
    ]);
    assert.deepEqual(readdirSync(run).sort(), [
      live,
      'checkpoint',
      'checkpoint-00000012',
      'log.jsonl',
    ]);
    assert.equal(loadCheckpoint(run).state.epoch, 0);
  });

  test('the first layout (a plain folder, JSON optimiser state) is read and then replaced', () => {
    const run = join(root, 'v1');
    const dir = join(run, 'checkpoint');
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, 'weights.safetensors'), store().toTensors(), { epoch: '4' });
    const old = {
      ...state(4),
      optimizer: { kind: 'adamw', step: 12, buffers: { 'fc.weight': [[0.5, 0.25]] } },
    };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(old, null, 2));
    const ck = loadCheckpoint(run);
    assert.deepEqual(ck.state, old);
    assert.deepEqual(ck.tensors.get('bn.running_var')!.data, Float32Array.from([0.25, 4]));
    // Torn first-layout checkpoint: the weights of epoch 5 renamed, the state not yet.
    writeSafetensors(join(dir, 'weights.safetensors'), store().toTensors(), { epoch: '5' });
    assert.throws(
      () => loadCheckpoint(dir),
      (e: unknown) =>
        e instanceof DataError &&
        /epoch 5, state from epoch 4/.test(e.message) &&
        e.message.includes(dir),
    );
    saveCheckpoint(dir, store(), state(6));
    assert.ok(lstatSync(dir).isSymbolicLink());
    assert.deepEqual(readdirSync(run).sort(), ['checkpoint', 'checkpoint-00000084']);
    assert.equal(loadCheckpoint(run).state.epoch, 6);
  });

  test('missing files, bad JSON and incomplete state name the problem', () => {
    assert.throws(() => loadCheckpoint(join(root, 'nope')), /no such checkpoint: .*nope/);
    const dir = join(root, 'half');
    mkdirSync(dir);
    writeFileSync(join(dir, 'state.json'), '{');
    assert.throws(() => loadCheckpoint(dir), /lacks weights\.safetensors/);
    writeSafetensors(join(dir, 'weights.safetensors'), store().toTensors(), { epoch: '0' });
    assert.throws(() => loadCheckpoint(dir), /state\.json: not valid JSON/);
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ preset: 'x', epoch: 0 }));
    assert.throws(() => loadCheckpoint(dir), /missing or invalid optimizer, history/);
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({ format: 2, preset: 'x', epoch: 0, history: [] }),
    );
    assert.throws(() => loadCheckpoint(dir), /missing or invalid files/);
    assert.ok(!existsSync(join(dir, 'checkpoint')));
  });
});
