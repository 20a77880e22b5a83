import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { evaluateModel } from '../eval/evaluate.js';
import { getPreset } from '../models/registry.js';
import { readModel } from '../onnx/serialize.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { evalModelWith } from '../train/loop.js';
import { ParamStore } from '../train/params.js';
import { emit, withCommon } from './common.js';
import { loadTrainTest } from './pretrain.js';

/** `denoiserep eval`: accuracy and retrieval metrics of a model on the test set. */
export function evalCommand(program: Command): void {
  withCommon(
    program
      .command('eval')
      .description(
        'evaluate a model (.onnx with logits and feature outputs, or a checkpoint folder)',
      )
      .argument('<model>', '.onnx file or checkpoint folder (from pretrain)')
      .option('--data <src>', 'embedded, fashion-mnist or an IDX folder (test split)', 'embedded')
      .option(
        '--task <task>',
        'classification or retrieval (both are always computed; this picks the headline)',
        'classification',
      ),
  ).action(
    async (arg: string, o: { data: string; task: string; json: boolean; threads: number }) => {
      if (o.task !== 'classification' && o.task !== 'retrieval')
        throw new UsageError(`--task must be classification or retrieval, got '${o.task}'`);
      if (!existsSync(arg)) throw new UsageError(`no such model or checkpoint: ${arg}`);
      let model;
      if (statSync(arg).isDirectory()) {
        const dir = existsSync(join(arg, 'checkpoint')) ? join(arg, 'checkpoint') : arg;
        const ck = loadCheckpoint(dir);
        model = evalModelWith(getPreset(ck.state.preset), ParamStore.fromTensors(ck.tensors));
      } else {
        model = await readModel(arg);
      }
      const names = model.graph.outputs.map((v) => v.name);
      if (!names.includes('logits') || !names.includes('feature')) {
        throw new UsageError(
          `${arg} must have 'logits' and 'feature' outputs (it has ${names.join(', ')})`,
        );
      }
      const { test } = await loadTrainTest(o.data);
      const r = await evaluateModel(model, test, { threads: o.threads });
      emit(o.json, { model: arg, task: o.task, ...r }, () =>
        o.task === 'classification'
          ? `acc@1 ${(100 * r.acc1).toFixed(2)}%  acc@5 ${(100 * r.acc5).toFixed(2)}%  (retrieval mAP ${(100 * r.mAP).toFixed(2)}%, Rank-1 ${(100 * r.rank1).toFixed(2)}%) on ${r.images} images`
          : `mAP ${(100 * r.mAP).toFixed(2)}%  Rank-1 ${(100 * r.rank1).toFixed(2)}%  Rank-5 ${(100 * r.rank5).toFixed(2)}%  (acc@1 ${(100 * r.acc1).toFixed(2)}%) on ${r.images} images`,
      );
    },
  );
}
