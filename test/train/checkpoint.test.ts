// Checkpoints: round trip, resolution from a run folder, torn and broken checkpoints.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataError } from '../../src/util/errors.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import {
  type CheckpointState,
  loadCheckpoint,
  saveCheckpoint,
} from '../../src/train/checkpoint.js';
import { ParamStore } from '../../src/models/params.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));

function store(): ParamStore {
  const s = new ParamStore();
  s.set('fc.weight', [2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-8, -7]));
  s.set('bn.running_var', [2], Float32Array.from([0.25, 4]));
  return s;
}

function state(epoch: number): CheckpointState {
  return {
    preset: 'resnet-micro',
    config: { lr: 0.01 },
    epoch,
    globalStep: 12 * (epoch + 1),
    optimizer: { kind: 'adamw', step: 12, buffers: { 'fc.weight': [[0.5, 0.25]] } },
    rng: { seed: 3, base: [1, 2, 3, 4, null] },
    history: [{ epoch, loss: 0.5 }],
  };
}

describe('checkpoints', () => {
  test('round trip through a run folder: weights bit-exact, state equal, no temp files left', () => {
    const run = join(root, 'run');
    saveCheckpoint(join(run, 'checkpoint'), store(), state(1));
    saveCheckpoint(join(run, 'checkpoint'), store(), state(2));
    const ck = loadCheckpoint(run);
    assert.equal(ck.dir, join(run, 'checkpoint'));
    assert.deepEqual(ck.state, state(2));
    assert.deepEqual(ck.tensors.get('fc.weight')!.data, store().get('fc.weight').data);
    assert.deepEqual(ck.tensors.get('bn.running_var')!.dims, [2]);
    assert.deepEqual(readdirSync(ck.dir).sort(), ['state.json', 'weights.safetensors']);
  });

  test('a torn checkpoint (weights of another epoch than the state) is refused', () => {
    const dir = join(root, 'torn');
    saveCheckpoint(dir, store(), state(4));
    // A crash after the weights of epoch 5 were renamed but before state.json was.
    writeSafetensors(join(dir, 'weights.safetensors'), store().toTensors(), { epoch: '5' });
    assert.throws(
      () => loadCheckpoint(dir),
      (e: unknown) =>
        e instanceof DataError &&
        /epoch 5, state from epoch 4/.test(e.message) &&
        e.message.includes(dir),
    );
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
  });
});
