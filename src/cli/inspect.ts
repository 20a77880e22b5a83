import type { Command } from 'commander';
import { describePlan } from '../denoise/fit.js';
import { planConversion } from '../denoise/plan.js';
import type { TimestepMode } from '../denoise/schedule.js';
import { countFlops } from '../eval/flops.js';
import { emit, withCommon } from './common.js';
import { loadModelArg } from './load-model.js';

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
      .option('--timesteps <mode>', 'timestep assignment: paper (N..1) or public-code', 'paper'),
  ).action(
    async (arg: string, o: { layers: string; timesteps: string; json: boolean; seed: number }) => {
      const { model, source } = await loadModelArg(arg, o.seed);
      const plan = planConversion(model.graph, {
        filter: o.layers,
        timesteps: o.timesteps as TimestepMode,
        source,
      });
      const flops = countFlops(model);
      const byNode = new Map(flops.byNode.map((f) => [f.name, f.flops]));
      const layers = describePlan(plan).map((l, i) => ({
        ...l,
        flops: byNode.get(plan.layers[i]!.layer.node.name) ?? 0,
      }));
      const result = {
        model: source,
        nodes: model.graph.nodes.length,
        flopsPerImage: flops.total,
        selected: layers.length,
        layers,
      };
      emit(o.json, result, () =>
        [
          `${source}: ${model.graph.nodes.length} nodes, ${(flops.total / 1e6).toFixed(2)} MFLOPs per image, ${layers.length} layers selected (${o.layers})`,
          ...layers.map(
            (l) =>
              `  t=${String(l.t).padStart(3)}  ${String(l.op).padEnd(6)} ${String(l.layer).padEnd(28)} ${l.in} -> ${l.out}  denoiser ${l.denoiserDim}x${l.denoiserDim} (${l.side}${l.affine ? '' : ', no bias'})  ${(Number(l.flops) / 1e6).toFixed(2)} MFLOPs`,
          ),
        ].join('\n'),
      );
    },
  );
}
