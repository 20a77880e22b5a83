import type { Command } from 'commander';
import { inspect, type InspectOptions } from '../denoise/api/verify.js';
import { emit, floatArg, withCommon } from './common.js';

/** `denoiserep inspect`: the layers DenoiseRep would convert, their shapes, timesteps and FLOPs. */
export function inspectCommand(program: Command): void {
  withCommon(
    program
      .command('inspect')
      .description(
        'list the layers DenoiseRep selects in a model, with shapes, timesteps and FLOPs',
      )
      .argument('<model>', '.onnx file or model preset')
      .option(
        '--layers <filter>',
        "layer filter: all, mlp, linear, conv, or globs like 'blocks.*.mlp.*'",
        'all',
      )
      .option(
        '--timesteps <mode>',
        'timestep assignment: paper (N..1), public-code, or linear:<first>:<last>',
        'paper',
      )
      .option(
        '--noise-scale <k>',
        "multiple of the paper's betas (shown in each layer's c1)",
        floatArg('--noise-scale'),
        1,
      )
      .option('--untie', 'also select layers with tied weights (each gets its own copy)', false),
  ).action(
    async (
      arg: string,
      o: {
        layers: string;
        timesteps: string;
        noiseScale: number;
        untie: boolean;
        json: boolean;
        seed: number;
      },
    ) => {
      const result = await inspect(arg, {
        layers: o.layers,
        timesteps: o.timesteps as InspectOptions['timesteps'],
        untie: o.untie,
        noiseScale: o.noiseScale,
        seed: o.seed,
      });
      const { layers } = result;
      emit(o.json, result, () =>
        [
          `${result.model}: ${result.nodes} nodes, ${(result.flopsPerImage / 1e6).toFixed(2)} MFLOPs per image, ${layers.length} layers selected (${o.layers})`,
          ...layers.map(
            (l) =>
              `  t=${String(l.t).padStart(3)}  c1=${l.c1.toExponential(2)}  ${String(l.op).padEnd(6)} ${String(l.layer).padEnd(28)} ${l.in} -> ${l.out}  denoiser ${l.denoiserDim}x${l.denoiserDim} (${l.side}${l.affine ? '' : ', no bias'})  ${(Number(l.flops) / 1e6).toFixed(2)} MFLOPs`,
          ),
          ...result.skipped.map((s) => `  skipped ${s.op.padEnd(6)} ${s.name}: ${s.reason}`),
        ].join('\n'),
      );
    },
  );
}
