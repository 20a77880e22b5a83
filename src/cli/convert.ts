import type { Command } from 'commander';
import { writeDenoisers } from '../denoise/denoiser-file.js';
import { describePlan } from '../denoise/fit.js';
import { assertFiniteLayers } from '../denoise/fuse.js';
import { initDenoisers, planConversion } from '../denoise/plan.js';
import type { TimestepMode } from '../denoise/schedule.js';
import { labelFreeGraph } from '../denoise/train.js';
import { writeModel } from '../onnx/serialize.js';
import { UsageError } from '../util/errors.js';
import { emit, floatArg, intArg, withCommon } from './common.js';
import { loadModelArg } from '../models/load.js';
import { checkOutputPaths, modelInput } from './paths.js';

/** `denoiserep convert`: attach initial denoisers to a model (and optionally export the training graph). */
export function convertCommand(program: Command): void {
  withCommon(
    program
      .command('convert')
      .description('select layers, assign timesteps and initialise their denoisers')
      .argument('<model>', '.onnx file or model preset')
      .requiredOption('--out <file>', 'denoiser safetensors to write')
      .option('--layers <filter>', 'layers: all, mlp, linear, conv, or globs', 'all')
      .option('--timesteps <mode>', 'paper (N..1) or public-code', 'paper')
      .option('--untie', 'also convert layers with tied weights (fused into copies)', false)
      .option('--diffusion-steps <n>', 'T of the schedule', intArg('--diffusion-steps'), 1000)
      .option('--beta-start <x>', 'first beta', floatArg('--beta-start'), 1e-4)
      .option('--beta-end <x>', 'last beta', floatArg('--beta-end'), 2e-3)
      .option(
        '--graph-out <file>',
        'also write the label-free training graph (forward + noise + losses) as ONNX',
      ),
  ).action(
    async (
      arg: string,
      o: {
        out: string;
        layers: string;
        timesteps: string;
        untie: boolean;
        diffusionSteps: number;
        betaStart: number;
        betaEnd: number;
        graphOut?: string;
        json: boolean;
        seed: number;
      },
    ) => {
      if (o.betaStart >= o.betaEnd)
        throw new UsageError(
          `--beta-start ${o.betaStart} must be smaller than --beta-end ${o.betaEnd}`,
        );
      const outputs = [{ flag: '--out', path: o.out }];
      if (o.graphOut !== undefined) outputs.push({ flag: '--graph-out', path: o.graphOut });
      checkOutputPaths(modelInput(arg), outputs);
      const { model, source } = await loadModelArg(arg, o.seed);
      const plan = planConversion(model.graph, {
        filter: o.layers,
        timesteps: o.timesteps as TimestepMode,
        schedule: { timesteps: o.diffusionSteps, betaStart: o.betaStart, betaEnd: o.betaEnd },
        untie: o.untie,
        source,
      });
      assertFiniteLayers(model, plan);
      const values = initDenoisers(plan, o.seed);
      writeDenoisers(o.out, plan, o.layers, values, { model: source });
      if (o.graphOut) writeModel(o.graphOut, labelFreeGraph(model, plan, values, o.seed + 1).model);
      const layers = describePlan(plan);
      emit(o.json, { model: source, out: o.out, graphOut: o.graphOut, layers }, () =>
        [
          `${layers.length} denoisers for ${source} written to ${o.out}`,
          ...layers.map(
            (l) => `  t=${l.t} ${l.layer} (${l.denoiserDim}x${l.denoiserDim}, ${l.side})`,
          ),
        ].join('\n'),
      );
    },
  );
}
