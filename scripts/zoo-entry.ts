/**
 * Adds trained weights to the model zoo: reads a pretrain output (or checkpoint) folder,
 * measures acc@1 on the full test split, and writes zoo/<preset>/model.safetensors with its
 * manifest (sha256, size, the exact commands, the commit, the accuracy).
 *
 * Usage:
 *   node --import tsx scripts/zoo-entry.ts runs/vit-full-ft \
 *     --command 'denoiserep pretrain --model vit-tiny-fmnist ... --out runs/vit-full' \
 *     --command 'denoiserep pretrain --model vit-tiny-fmnist --init runs/vit-full ...' \
 *     [--data fashion-mnist] [--commit <hash>] [--notes '49 + 9 min on 2 cores'] [--zoo zoo]
 *
 * The commit defaults to `git rev-parse HEAD`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTrainTest } from '../src/cli/pretrain.js';
import { evaluateModel } from '../src/eval/evaluate.js';
import { ParamStore } from '../src/models/params.js';
import { getPreset } from '../src/models/registry.js';
import { writeZooEntry } from '../src/models/zoo.js';
import { loadCheckpoint } from '../src/train/checkpoint.js';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    command: { type: 'string', multiple: true },
    data: { type: 'string', default: 'fashion-mnist' },
    commit: { type: 'string' },
    notes: { type: 'string' },
    zoo: { type: 'string' },
  },
});

const src = positionals[0];
if (!src || !o.command?.length) {
  console.error('usage: zoo-entry.ts <pretrain output folder> --command "<cmd>" [--command ...]');
  process.exit(1);
}
const dir = existsSync(join(src, 'checkpoint', 'state.json')) ? join(src, 'checkpoint') : src;
const ck = loadCheckpoint(dir);
const presetOptions = ck.state.presetOptions ?? {};
const def = getPreset(ck.state.preset, presetOptions);
const values = ParamStore.fromTensors(ck.tensors);
const { test } = await loadTrainTest(o.data, 'test');
const e = await evaluateModel({ def, values }, test, { task: 'classification' });
const commit = o.commit ?? execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
const manifest = writeZooEntry({
  ...(o.zoo ? { root: o.zoo } : {}),
  def,
  values,
  commands: o.command,
  commit,
  data: `${o.data} test split`,
  acc1: Math.round(1e4 * e.acc1) / 100,
  testImages: test.size,
  ...(o.notes ? { notes: o.notes } : {}),
});
console.log(JSON.stringify(manifest));
