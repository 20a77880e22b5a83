import type { Command } from 'commander';
import { verify } from '../denoise/api/verify.js';
import type { VerifyReport } from '../denoise/verify.js';
import { modelSource } from '../models/load.js';
import { DataError } from '../util/errors.js';
import { emit, floatArg, intArg, listArg, withCommon } from './common.js';

/** The flags as commander parses them. */
interface VerifyFlags {
  images?: string;
  data?: string;
  size?: number[];
  channels?: number;
  mean?: number[];
  std?: number[];
  skipCorrupt: boolean;
  fused: string;
  denoisers: string;
  tolerance: number;
  runs: number;
  latencyBudget: number;
  batch: number;
  json: boolean;
  seed: number;
  threads: number;
}

/** The text `verify` prints. */
function verifyText(report: VerifyReport, source: string, fused: string): string {
  return [
    `${report.ok ? 'OK' : 'FAILED'}: ${source} vs ${fused} (${report.layers.length} fused layers, tolerance ${report.tolerance})`,
    `  topology ${report.topology.identical ? 'identical' : `differs: ${report.topology.differences.join('; ')}`}; FLOPs ${report.flops.original} vs ${report.flops.fused}`,
    `  max relative error: outputs ${Math.max(...report.outputs.map((e) => e.maxRel)).toExponential(2)}, layers ${Math.max(...report.layers.map((e) => e.maxRel)).toExponential(2)}`,
    ...report.latency.map(
      (l) =>
        `  latency batch ${l.batch}: original ${l.originalMs.toFixed(2)} ms, fused ${l.fusedMs.toFixed(2)} ms, ratio ${l.ratio.toFixed(3)} (${l.runs} runs in ${l.rounds} rounds)`,
    ),
    ...report.latencySkipped.map((l) => `  latency batch ${l.batch}: not measured (${l.reason})`),
    ...report.failures.map((f) => `  failure: ${f}`),
  ].join('\n');
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
      .option('--size <h,w>', 'input size (default: the model input size)', listArg('--size', 2))
      .option('--channels <n>', 'image channels', intArg('--channels'))
      .option('--mean <m>', 'per-channel mean', listArg('--mean', 3))
      .option('--std <s>', 'per-channel std', listArg('--std', 3))
      .option('--skip-corrupt', 'skip images that fail to decode', false)
      .option('--batch <n>', 'images compared', intArg('--batch'), 64)
      .option('--tolerance <x>', 'largest accepted relative error', floatArg('--tolerance'), 1e-4)
      .option(
        '--runs <n>',
        'timed runs per model at batch 64 (batch 1: 10x as many)',
        intArg('--runs'),
        100,
      )
      .option(
        '--latency-budget <s>',
        'seconds the latency measurement may take in all (fewer runs for large models)',
        floatArg('--latency-budget'),
        30,
      ),
  ).action(async (arg: string, o: VerifyFlags) => {
    const report = await verify(arg, {
      fused: o.fused,
      denoisers: o.denoisers,
      images: o.images,
      data: o.data,
      size: o.size,
      channels: o.channels,
      mean: o.mean,
      std: o.std,
      skipCorrupt: o.skipCorrupt,
      batch: o.batch,
      tolerance: o.tolerance,
      runs: o.runs,
      latencyBudget: o.latencyBudget,
      seed: o.seed,
      threads: o.threads,
    });
    emit(o.json, report, () => verifyText(report, modelSource(arg), o.fused));
    if (!report.ok) throw new DataError(`verification failed: ${report.failures[0]}`);
  });
}
