import type { Command } from 'commander';
import { exportWeights } from '../denoise/api/export-weights.js';
import { emit, withCommon } from './common.js';

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
      const r = await exportWeights(arg, { out: o.out, layersOnly: o.layersOnly, seed: o.seed });
      emit(o.json, r, () =>
        [
          `wrote ${r.tensors.length} tensors of ${r.model} to ${r.out}`,
          ...r.tensors
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
