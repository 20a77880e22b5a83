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
 * A DDPM U-Net run (`pretrain --model ddpm-*`) is added with its EMA weights and the
 * linear probe that scores it, as printed by `denoiserep probe <run> --json` (its last
 * line: t, block, acc1, testImages):
 *   node --import tsx scripts/zoo-entry.ts runs/ddpm-unet-fmnist --probe-json probe.json \
 *     --command 'denoiserep pretrain --model ddpm-unet-fmnist ...' --command 'denoiserep probe ...'
 *
 * The commit defaults to `git rev-parse HEAD`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTrainTest } from '../src/cli/pretrain.js';
import { loadDiffusionModel } from '../src/diffusion/load.js';
import { evaluateModel } from '../src/eval/evaluate.js';
import { ParamStore } from '../src/models/params.js';
import { getPreset, isDiffusionPreset } from '../src/models/registry.js';
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
    'probe-json': { type: 'string' },
  },
});

const src = positionals[0];
if (!src || !o.command?.length) {
  console.error('usage: zoo-entry.ts <pretrain output folder> --command "<cmd>" [--command ...]');
  process.exit(1);
}
const dir = existsSync(join(src, 'checkpoint', 'state.json')) ? join(src, 'checkpoint') : src;
const commit = o.commit ?? execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
const common = {
  ...(o.zoo ? { root: o.zoo } : {}),
  commands: o.command,
  commit,
  data: `${o.data} test split`,
  ...(o.notes ? { notes: o.notes } : {}),
};

const ck = loadCheckpoint(dir);
if (isDiffusionPreset(ck.state.preset)) {
  if (!o['probe-json']) {
    console.error('a U-Net entry needs --probe-json <the last line of `probe <run> --json`>');
    process.exit(1);
  }
  const lines = readFileSync(o['probe-json'], 'utf8').trim().split('\n');
  const p = JSON.parse(lines.at(-1)!) as {
    t: number;
    block: string;
    acc1: number;
    testImages: number;
    head: string;
  };
  if (p.head !== 'linear') throw new Error(`${o['probe-json']}: not a linear probe`);
  const unet = await loadDiffusionModel(src);
  const manifest = writeZooEntry({
    ...common,
    def: unet.def,
    values: unet.values,
    acc1: Math.round(100 * p.acc1) / 100,
    testImages: p.testImages,
    probe: { t: p.t, block: p.block },
  });
  console.log(JSON.stringify(manifest));
  process.exit(0);
}
const presetOptions = ck.state.presetOptions ?? {};
const def = getPreset(ck.state.preset, presetOptions);
const values = ParamStore.fromTensors(ck.tensors);
const { test } = await loadTrainTest(o.data, 'test');
const e = await evaluateModel({ def, values }, test, { task: 'classification' });
const manifest = writeZooEntry({
  ...common,
  def,
  values,
  acc1: Math.round(1e4 * e.acc1) / 100,
  testImages: test.size,
});
console.log(JSON.stringify(manifest));
