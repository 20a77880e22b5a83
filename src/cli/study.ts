import type { Command } from 'commander';
import { parseCorruptions } from '../data/corruptions.js';
import {
  STUDY_ARMS,
  type StudyArm,
  studyJson,
  type StudySettings,
  runStudy,
} from '../experiments/study.js';
import { studyMarkdown } from '../experiments/study-report.js';
import { UsageError } from '../util/errors.js';
import { emit, intArg, listArg, withCommon } from './common.js';

interface StudyOptions {
  backbone?: string;
  data?: string;
  seeds?: number;
  arms?: string;
  layers?: string;
  corruptions?: string;
  severities?: number[];
  noiseScales?: number[];
  trainImages?: number;
  momentImages?: number;
  testImages?: number;
  corruptedImages?: number;
  queriesPerClass?: number;
  quick: boolean;
  out: string;
  id?: string;
  json: boolean;
  seed: number;
  threads: number;
}

/** `denoiserep study`: arms against compute-matched controls, robustness, noise-scale sweep. */
export function studyCommand(program: Command): void {
  withCommon(
    program
      .command('study')
      .description(
        'compare DenoiseRep arms with controls that differ only in the denoisers, on clean and corrupted test images, with paired statistics and a noise-scale sweep; resumable (runs/<id>/)',
      )
      .option(
        '--backbone <ref>',
        'zoo:<preset> or a pretrain output folder (default: the shipped zoo:vit-tiny-fmnist)',
      )
      .option(
        '--data <src>',
        'embedded, fashion-mnist or an IDX folder (default: fashion-mnist when installed)',
      )
      .option('--seeds <n>', 'number of seeds (--seed, --seed + 1, ...)', intArg('--seeds'))
      .option(
        '--arms <list>',
        `comma-separated arms (${STUDY_ARMS.join(', ')}); their controls are added`,
      )
      .option('--layers <filter>', 'layers to convert: all (default), mlp, linear, conv, or globs')
      .option('--corruptions <list>', 'comma-separated corruptions, or all')
      .option('--severities <list>', 'comma-separated severities 1..5', listArg('--severities', 5))
      .option(
        '--noise-scales <list>',
        "comma-separated multiples of the paper's betas for the closed-form sweep",
        listArg('--noise-scales', 100),
      )
      .option(
        '--train-images <n>',
        'training images for the trained arms (0: all)',
        intArg('--train-images'),
      )
      .option(
        '--moment-images <n>',
        "of the training images, how many give the closed form's input moments (0: all)",
        intArg('--moment-images'),
      )
      .option('--test-images <n>', 'clean test images (0: all)', intArg('--test-images'))
      .option('--corrupted-images <n>', 'images per corrupted split', intArg('--corrupted-images'))
      .option(
        '--queries-per-class <n>',
        'retrieval queries per class (classes as identities, the other test images the gallery)',
        intArg('--queries-per-class'),
      )
      .option(
        '--quick',
        'a small run of every arm, control, corruption and 3 noise levels (about 2 min)',
        false,
      )
      .option('--out <dir>', 'runs folder', 'runs')
      .option(
        '--id <name>',
        'study folder name (default: a hash of the settings, so the same command resumes)',
      ),
  ).action(async (o: StudyOptions) => {
    const settings: Partial<StudySettings> = {};
    if (o.backbone !== undefined) settings.backbone = o.backbone;
    if (o.data !== undefined) settings.data = o.data;
    if (o.seeds !== undefined) {
      settings.seeds = Array.from({ length: o.seeds }, (_, i) => o.seed + i);
    } else if (o.seed !== 0) settings.seeds = [o.seed];
    if (o.arms !== undefined) {
      const arms = o.arms.split(',').map((a) => a.trim());
      for (const a of arms)
        if (!(STUDY_ARMS as readonly string[]).includes(a))
          throw new UsageError(`--arms: unknown arm '${a}' (arms: ${STUDY_ARMS.join(', ')})`);
      settings.arms = arms as StudyArm[];
    }
    if (o.layers !== undefined) settings.layers = o.layers;
    if (o.corruptions !== undefined)
      settings.corruptions = parseCorruptions(o.corruptions.split(',').map((c) => c.trim()));
    if (o.severities !== undefined) settings.severities = o.severities;
    if (o.noiseScales !== undefined) settings.noiseScales = o.noiseScales;
    if (o.trainImages !== undefined) settings.trainImages = o.trainImages;
    if (o.momentImages !== undefined) settings.momentImages = o.momentImages;
    if (o.testImages !== undefined) settings.testImages = o.testImages;
    if (o.corruptedImages !== undefined) settings.corruptedImages = o.corruptedImages;
    if (o.queriesPerClass !== undefined) settings.queriesPerClass = o.queriesPerClass;
    const run = await runStudy({
      quick: o.quick,
      settings,
      root: o.out,
      ...(o.id !== undefined ? { id: o.id } : {}),
      threads: o.threads,
      command: ['denoiserep', ...process.argv.slice(2)].join(' '),
      onProgress: (msg) => {
        if (!o.json) process.stderr.write(`[study] ${msg}\n`);
      },
    });
    emit(o.json, studyJson(run.results), () =>
      [
        studyMarkdown(run.results),
        '',
        `wrote ${run.dir}/ (results.json, table.md, report.html); ${run.computed.length} units computed, ${run.cached.length} from the cache`,
      ].join('\n'),
    );
  });
}
