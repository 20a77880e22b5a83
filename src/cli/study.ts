import type { Command } from 'commander';
import type { CorruptionName } from '../data/corruptions.js';
import { study } from '../experiments/study-api.js';
import { STUDY_ARMS, type StudyArm } from '../experiments/study.js';
import { studyMarkdown } from '../experiments/study-report.js';
import { emit, intArg, listArg, withCommon } from './common.js';

interface StudyFlags {
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
  ).action(async (o: StudyFlags) => {
    const list = (v?: string) => v?.split(',').map((x) => x.trim());
    const run = await study({
      ...o,
      arms: list(o.arms) as StudyArm[] | undefined,
      corruptions: list(o.corruptions) as CorruptionName[] | undefined,
      command: ['denoiserep', ...process.argv.slice(2)].join(' '),
      onProgress: (msg) => {
        if (!o.json) process.stderr.write(`[study] ${msg}\n`);
      },
    });
    emit(o.json, run.summary, () =>
      [
        studyMarkdown(run.results),
        '',
        `wrote ${run.dir}/ (results.json, table.md, report.html); ${run.computed.length} units computed, ${run.cached.length} from the cache`,
      ].join('\n'),
    );
  });
}
