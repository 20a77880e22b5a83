import type { Command } from 'commander';
import { readDenoisers } from '../denoise/denoiser-file.js';
import { describeCopy, fuseWithReport } from '../denoise/fuse.js';
import { writeModel } from '../onnx/serialize.js';
import { Rng } from '../util/rng.js';
import { emit, withCommon } from './common.js';
import { loadModelArg } from '../models/load.js';
import { checkOutputPaths, modelInput } from './paths.js';

/** `denoiserep fuse`: trained denoisers into the original model's weights. */
export function fuseCommand(program: Command): void {
  withCommon(
    program
      .command('fuse')
      .description('fuse trained denoisers into the weights: same graph, same FLOPs, new weights')
      .argument('<model>', 'the original ONNX model')
      .requiredOption('--denoisers <file>', 'denoiser safetensors (from convert/fit/finetune)')
      .requiredOption('--out <file>', 'fused model to write')
      .option(
        '--stochastic',
        'add the DDPM step noise c2·W z to the biases (seeded by --seed); off by default',
        false,
      ),
  ).action(
    async (
      arg: string,
      o: { denoisers: string; out: string; stochastic: boolean; json: boolean; seed: number },
    ) => {
      checkOutputPaths(
        [...modelInput(arg), { flag: '--denoisers', path: o.denoisers }],
        [{ flag: '--out', path: o.out }],
      );
      const { model, source } = await loadModelArg(arg, o.seed);
      const { plan, values } = readDenoisers(o.denoisers, model.graph, source);
      const { model: fused, report } = fuseWithReport(
        model,
        plan,
        values,
        o.stochastic ? { stochastic: new Rng(o.seed) } : {},
      );
      writeModel(o.out, fused);
      emit(
        o.json,
        {
          model: source,
          out: o.out,
          layers: plan.layers.length,
          stochastic: o.stochastic,
          ...report,
        },
        () =>
          [
            `fused ${plan.layers.length} layers into ${o.out}`,
            ...report.copies.map((c) => `  ${describeCopy(c)}`),
          ].join('\n'),
      );
    },
  );
}
