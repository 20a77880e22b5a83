import type { Command } from 'commander';
import { feedBatches } from '../data/dataset.js';
import { readDenoisers } from '../denoise/denoiser-file.js';
import { verifyFusion } from '../denoise/verify.js';
import { DataError } from '../util/errors.js';
import { readModel } from '../onnx/serialize.js';
import { float32 } from '../onnx/tensor.js';
import { Rng } from '../util/rng.js';
import { emit, parseFloatArg, parseIntArg, parseListArg, withCommon } from './common.js';
import { type ImageInputOptions, loadInputImages } from './inputs.js';
import { loadModelArg } from './load-model.js';

interface VerifyOptions extends ImageInputOptions {
  fused: string;
  denoisers: string;
  tolerance: number;
  runs: number;
  batch: number;
  json: boolean;
  seed: number;
  threads: number;
}

/** `denoiserep verify`: the fused model against the trained unfused one, topology, FLOPs, latency. */
export function verifyCommand(program: Command): void {
  withCommon(
    program
      .command('verify')
      .description(
        'check a fused model against the unfused model with denoising steps: errors, topology, FLOPs, latency',
      )
      .argument('<model>', 'the original ONNX model')
      .requiredOption('--fused <file>', 'the fused ONNX model')
      .requiredOption('--denoisers <file>', 'the denoisers it was fused from')
      .option('--images <dir>', 'real inputs: a folder of images')
      .option('--data <src>', 'real inputs: embedded, fashion-mnist or an IDX folder (test split)')
      .option('--size <h,w>', 'input size (default: the model input size)', parseListArg('--size'))
      .option('--channels <n>', 'image channels', parseIntArg('--channels', 1))
      .option('--mean <m>', 'per-channel mean', parseListArg('--mean'))
      .option('--std <s>', 'per-channel std', parseListArg('--std'))
      .option('--skip-corrupt', 'skip images that fail to decode', false)
      .option('--batch <n>', 'images compared', parseIntArg('--batch', 1), 64)
      .option(
        '--tolerance <x>',
        'largest accepted relative error',
        parseFloatArg('--tolerance'),
        1e-4,
      )
      .option(
        '--runs <n>',
        'timed runs per model at batch 64 (batch 1: 10x as many)',
        parseIntArg('--runs', 1),
        100,
      ),
  ).action(async (arg: string, o: VerifyOptions) => {
    const { model, source } = await loadModelArg(arg, o.seed);
    const fused = await readModel(o.fused);
    const { plan, values } = readDenoisers(o.denoisers, model.graph, source);
    const { data, prep, inputName } = await loadInputImages(model, source, o);
    const inputs = feedBatches(data, inputName, Math.min(o.batch, data.size), prep).next().value!;
    const rng = new Rng(o.seed);
    const [c, h, w] = [data.channels, data.height, data.width];
    const report = await verifyFusion({
      original: model,
      fused,
      plan,
      denoisers: values,
      inputs,
      tolerance: o.tolerance,
      threads: o.threads,
      latencyRuns: o.runs,
      makeInputs: (n) => ({
        [inputName]: float32([n, c, h, w], rng.fillUniform(new Float32Array(n * c * h * w), 0, 1)),
      }),
    });
    emit(o.json, report, () =>
      [
        `${report.ok ? 'OK' : 'FAILED'}: ${source} vs ${o.fused} (${plan.layers.length} fused layers, tolerance ${o.tolerance})`,
        `  topology ${report.topology.identical ? 'identical' : `differs: ${report.topology.differences.join('; ')}`}; FLOPs ${report.flops.original} vs ${report.flops.fused}`,
        `  max relative error: outputs ${Math.max(...report.outputs.map((e) => e.maxRel)).toExponential(2)}, layers ${Math.max(...report.layers.map((e) => e.maxRel)).toExponential(2)}`,
        ...report.latency.map(
          (l) =>
            `  latency batch ${l.batch}: original ${l.originalMs.toFixed(2)} ms, fused ${l.fusedMs.toFixed(2)} ms, ratio ${l.ratio.toFixed(3)}`,
        ),
        ...report.failures.map((f) => `  failure: ${f}`),
      ].join('\n'),
    );
    if (!report.ok) throw new DataError(`verification failed: ${report.failures[0]}`);
  });
}
