import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { exportTorchWeights } from '../denoise/export-weights.js';
import { writeSafetensors } from '../io/safetensors.js';
import { UsageError } from '../util/errors.js';
import { emit, withCommon } from './common.js';
import { loadModelArg } from './load-model.js';
import { samePath } from './paths.js';

/** `denoiserep export-weights`: a (fused) ONNX model's parameters as a PyTorch state_dict. */
export function exportWeightsCommand(program: Command): void {
  withCommon(
    program
      .command('export-weights')
      .description(
        'write the parameters of an ONNX model exported from PyTorch (fused or not) under their PyTorch names and layouts, as safetensors for load_state_dict(..., strict=False)',
      )
      .argument('<model>', 'ONNX model (e.g. the fused model from fit or fuse)')
      .requiredOption('--out <file>', 'safetensors file to write')
      .option(
        '--layers-only',
        'only the weights and biases of MatMul, Gemm and Conv layers',
        false,
      ),
  ).action(
    async (arg: string, o: { out: string; layersOnly: boolean; json: boolean; seed: number }) => {
      const { model, source } = await loadModelArg(arg, o.seed);
      if (samePath(arg, o.out))
        throw new UsageError(`--out ${o.out} is the input model; refusing to overwrite it`);
      const r = exportTorchWeights(model, { layersOnly: o.layersOnly });
      mkdirSync(dirname(resolve(o.out)), { recursive: true });
      writeSafetensors(o.out, r.tensors, { format: 'pytorch', source });
      emit(
        o.json,
        {
          model: source,
          out: o.out,
          tensors: r.exported,
          notExported: r.notExported,
          notes: r.notes,
        },
        () =>
          [
            `wrote ${r.tensors.size} tensors of ${source} to ${o.out}`,
            ...r.exported
              .filter((e) => e.source === 'layer-weight')
              .map(
                (e) =>
                  `  ${e.name} [${e.dims}] from '${e.value}'${e.transposed ? ' (transposed back to [out, in])' : ''}`,
              ),
            ...r.notExported.map((n) => `  not exported: '${n.value}' [${n.dims}]: ${n.reason}`),
            ...r.notes.map((n) => `  note: ${n}`),
          ].join('\n'),
      );
    },
  );
}
