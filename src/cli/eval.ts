import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { ModelError, UsageError } from '../util/errors.js';
import { wilsonInterval } from '../eval/statistics.js';
import { evaluateModel } from '../eval/evaluate.js';
import { getPreset } from '../models/registry.js';
import { modelWithWeights } from '../models/weights.js';
import { isZooRef, loadZooModel, readZooManifest } from '../models/zoo.js';
import type { Model } from '../onnx/ir.js';
import { readModel } from '../onnx/serialize.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { ParamStore } from '../models/params.js';
import { emit, intArg, withCommon } from './common.js';
import { loadTrainTest } from './pretrain.js';

/**
 * Loads an evaluation model: an `.onnx` file, a shipped model `zoo:<preset>`, or a
 * checkpoint (folder, or a pretrain output folder) rebuilt from its preset with the
 * checkpoint's weights.
 */
export async function loadEvalModel(arg: string): Promise<Model> {
  if (isZooRef(arg)) return loadZooModel(arg).model;
  if (!existsSync(arg)) throw new ModelError(`no such model or checkpoint: ${arg}`);
  if (statSync(arg).isDirectory()) {
    const ck = loadCheckpoint(arg);
    const def = getPreset(ck.state.preset, ck.state.presetOptions ?? {});
    return modelWithWeights(def, ParamStore.fromTensors(ck.tensors));
  }
  return readModel(arg);
}

interface EvalOptions {
  data: string;
  task: string;
  batchSize: number;
  json: boolean;
  threads: number;
}

/** `denoiserep eval`: accuracy or retrieval metrics of a model on the test set. */
export function evalCommand(program: Command): void {
  withCommon(
    program
      .command('eval')
      .description(
        'evaluate a model (.onnx with logits and feature outputs, zoo:<preset>, or a checkpoint folder) on the test split; --json metrics are in percent',
      )
      .argument('<model>', '.onnx file, zoo:<preset>, checkpoint folder, or pretrain output folder')
      .option('--data <src>', 'embedded, fashion-mnist or an IDX folder (test split)', 'embedded')
      .option(
        '--task <task>',
        'classification (acc@1/5) or retrieval (mAP, CMC; classes as identities, 20 queries per class)',
        'classification',
      )
      .option('--batch-size <n>', 'images per run', intArg('--batch-size'), 256),
  ).action(async (arg: string, o: EvalOptions) => {
    if (o.task !== 'classification' && o.task !== 'retrieval')
      throw new UsageError(`--task must be classification or retrieval, got '${o.task}'`);
    const model = await loadEvalModel(arg);
    const { test } = await loadTrainTest(o.data, 'test');
    const r = await evaluateModel(model, test, {
      task: o.task,
      batchSize: o.batchSize,
      threads: o.threads,
    });
    // A shipped model states what it scored when it was made: print both.
    const manifest = isZooRef(arg) ? readZooManifest(arg) : undefined;
    // 12 significant digits: 91.1, not 91.10000000000001 (k/n times 100 in binary).
    const pct = (x: number) => Number((100 * x).toPrecision(12));
    const json = {
      model: arg,
      task: o.task,
      units: 'percent',
      acc1: pct(r.acc1),
      // 95% Wilson interval of acc@1 over the test images (retrieval has no acc@1).
      ...(o.task === 'classification'
        ? { acc1Ci95: wilsonInterval(Math.round(r.acc1 * r.images), r.images).ci!.map(pct) }
        : {}),
      acc5: pct(r.acc5),
      mAP: pct(r.mAP),
      rank1: pct(r.rank1),
      rank5: pct(r.rank5),
      ...(r.rank10 !== undefined ? { rank10: pct(r.rank10) } : {}),
      ...(r.validQueries !== undefined
        ? { validQueries: r.validQueries, skippedQueries: r.skippedQueries }
        : {}),
      ...(r.perClass ? { perClass: r.perClass.map(pct) } : {}),
      images: r.images,
      ...(manifest
        ? {
            manifest: {
              acc1: manifest.acc1,
              testImages: manifest.testImages,
              data: manifest.data,
              commit: manifest.commit,
            },
          }
        : {}),
    };
    const stated = manifest
      ? `\nmanifest of ${arg}: acc@1 ${manifest.acc1.toFixed(2)}% on ${manifest.testImages} images of ${manifest.data}`
      : '';
    emit(o.json, json, () =>
      o.task === 'classification'
        ? `acc@1 ${(100 * r.acc1).toFixed(2)}%  acc@5 ${(100 * r.acc5).toFixed(2)}% on ${r.images} images${stated}`
        : `mAP ${(100 * r.mAP).toFixed(2)}%  Rank-1 ${(100 * r.rank1).toFixed(2)}%  Rank-5 ${(100 * r.rank5).toFixed(2)}%  Rank-10 ${(100 * r.rank10!).toFixed(2)}% (${r.validQueries} queries) on ${r.images} images${stated}`,
    );
  });
}
