import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../util/errors.js';
import { runDemo } from '../experiments/demo.js';
import { assertVerified, emit, intArg, withCommon } from './common.js';

/** `denoiserep demo`: the main experiment on the embedded Fashion-MNIST subset. */
export function demoCommand(program: Command): void {
  withCommon(
    program
      .command('demo')
      .description(
        'start from the shipped ViT-tiny (or train one on the committed Fashion-MNIST subset with --from-scratch), then compare baseline, control, DenoiseRep~, label-free (trained and closed-form) and label-augmented DenoiseRep on the subset',
      )
      .option(
        '--backbone <ref>',
        'the trained backbone every arm starts from: zoo:<preset> or a pretrain output folder (default: zoo:vit-tiny-fmnist, else the first zoo entry)',
      )
      .option(
        '--from-scratch',
        'train the ViT-tiny baseline on the subset instead (or reuse it from runs/baselines/)',
        false,
      )
      .option(
        '--quick',
        'a smaller run (2,000 training images; from scratch: 3 pretraining epochs)',
        false,
      )
      .option('--seeds <n>', 'number of seeds (mean ± std over seeds 0..n-1)', intArg('--seeds'), 1)
      .option('--out <dir>', 'runs folder', 'runs'),
  ).action(
    async (o: {
      backbone?: string;
      fromScratch: boolean;
      quick: boolean;
      seeds: number;
      out: string;
      json: boolean;
      threads: number;
    }) => {
      if (existsSync(o.out) && !statSync(o.out).isDirectory())
        throw new UsageError(`--out ${o.out} is a file; give the runs folder`);
      if (o.fromScratch && o.backbone !== undefined)
        throw new UsageError(
          '--from-scratch trains the backbone: it cannot be given with --backbone',
        );
      const res = await runDemo({
        quick: o.quick,
        settings: o.fromScratch ? { backbone: null } : o.backbone ? { backbone: o.backbone } : {},
        seeds: Array.from({ length: o.seeds }, (_, i) => i),
        threads: o.threads,
        root: o.out,
        onProgress: (stage) => {
          if (!o.json) process.stderr.write(`[demo] ${stage}\n`);
        },
      });
      const verify = res.verify.map((v) => ({
        seed: v.seed,
        arm: v.arm,
        ok: v.report.ok,
        topologyIdentical: v.report.topology.identical,
        flopsEqual: v.report.flops.original === v.report.flops.fused,
        maxRelError: v.report.maxRelError,
        latencyRatio: Object.fromEntries(v.report.latency.map((l) => [`batch${l.batch}`, l.ratio])),
      }));
      emit(
        o.json,
        {
          dir: res.dir,
          seeds: res.seeds,
          arms: res.summary,
          perSeed: res.runs,
          verify,
          diagnostics: res.diagnostics,
          tildeLatencyRatio: res.tildeOverhead,
          settings: res.settings,
        },
        () =>
          [
            res.markdown,
            '',
            ...verify.map(
              (v) =>
                `verify ${v.arm} (seed ${v.seed}): ${v.ok ? 'OK' : 'FAILED'}, topology ${v.topologyIdentical ? 'identical' : 'DIFFERENT'}, max rel. error ${v.maxRelError.toExponential(1)}, latency fused/original ${Object.entries(
                  v.latencyRatio,
                )
                  .map(([k, r]) => `${k} ${r.toFixed(3)}`)
                  .join(', ')}`,
            ),
            ...res.diagnostics.map(
              (d) =>
                `fusion ${d.arm} (seed ${d.seed}): ${d.layers} layers, mean relative weight change ${d.meanRelWeightChange.toExponential(2)}, singular values of c3·I − c1·Wd in [${d.minSingularValue.toFixed(5)}, ${d.maxSingularValue.toFixed(5)}], ${d.shrunkDirections} directions shrunk by > 1%, denoising loss ${d.lossBefore.toFixed(4)} -> ${d.lossAfter.toFixed(4)}`,
            ),
            `DenoiseRep~ latency / baseline (batch 1): ${res.tildeOverhead.map((r) => r.toFixed(3)).join(', ')}`,
            `wrote ${res.dir}/ (table.md, results.json, log.jsonl, fused models, diagnostics and spectra)`,
          ].join('\n'),
      );
      assertVerified(verify.map((v) => ({ name: `${v.arm} (seed ${v.seed})`, ok: v.ok })));
    },
  );
}
