// `exportWeights`: a (fused) ONNX model's parameters as a PyTorch state_dict file, in one
// call — what `denoiserep export-weights` does.
import { writeSafetensors } from '../../io/safetensors.js';
import { isModelFile, loadModelArg } from '../../models/load.js';
import { UsageError } from '../../util/errors.js';
import { checkOutputPaths } from '../../util/output-paths.js';
import { type ExportedWeight, exportTorchWeights, type NotExported } from '../export-weights.js';
import { checkString, type CommonOptions, commonSettings } from './options.js';

/** Options of {@link exportWeights}: the flags of `denoiserep export-weights`. */
export interface ExportWeightsCallOptions extends Pick<CommonOptions, 'seed'> {
  /** The safetensors file to write (required; never the model). */
  out: string;
  /** Only the weights and biases of MatMul, Gemm and Conv layers (what fusion changes). */
  layersOnly?: boolean;
}

/** What {@link exportWeights} wrote. */
export interface ExportWeightsReport {
  model: string;
  out: string;
  /** Every tensor written: its PyTorch name, shape and the ONNX value it came from. */
  tensors: ExportedWeight[];
  /** Initializers with no PyTorch parameter (folded by the exporter), with the reason. */
  notExported: NotExported[];
  /** Before loading: tied parameters, untied ones, convs whose fusion cannot come back. */
  notes: string[];
}

/**
 * Writes the parameters of an ONNX model exported from PyTorch (fused or not) under their
 * PyTorch state_dict names and layouts, as safetensors for
 * `model.load_state_dict(load_file(out), strict=False)` (see {@link exportTorchWeights}).
 * @param model - the .onnx file (e.g. the fused model `fit` wrote)
 * @param options - where to write, and whether to keep layer parameters only
 * @throws UsageError for a bad option or an output that is an input; ModelError when no
 *   tensor carries a PyTorch parameter name
 * @example
 * const r = await exportWeights('fused.onnx', { out: 'fused.safetensors' });
 * r.notExported; // what the exporter folded away (BatchNorms folded into convs, ...)
 */
export async function exportWeights(
  model: string,
  options: ExportWeightsCallOptions,
): Promise<ExportWeightsReport> {
  const { seed } = commonSettings(options);
  checkString('out', options.out);
  if (!options.out) throw new UsageError('--out <file> is required');
  checkOutputPaths(isModelFile(model) ? [{ flag: '<model>', path: model }] : [], [
    { flag: '--out', path: options.out },
  ]);
  const { model: m, source } = await loadModelArg(model, seed);
  const r = exportTorchWeights(m, { layersOnly: options.layersOnly });
  writeSafetensors(options.out, r.tensors, { format: 'pytorch', source });
  return {
    model: source,
    out: options.out,
    tensors: r.exported,
    notExported: r.notExported,
    notes: r.notes,
  };
}
