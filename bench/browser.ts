// Browser latency benchmark: the fused ViT-tiny (all 26 embedding layers, the paper's
// coefficients, as bench:latency fuses it) against its original in headless Chromium with
// onnxruntime-web (WebAssembly, one thread), timed in interleaved rounds with one session
// alive at a time (as compareLatency does in Node).
// The graphs are identical, so the ratio should be 1 within measurement noise.
// Prints one JSON object with --json.
//   npm run bench:browser -- --json [--runs 600] [--batches 1,16] [--block n]
// --block: timed runs per model and round (default 5 at batch 1, 3 at batch 16: many short
// rounds, which pair the two models' timings closely even when the load drifts fast; on
// this shared 2-core machine, 20 rounds of 30 runs gave ratios from 0.87 to 1.09).
import { parseArgs } from 'node:util';
import { countFlops } from '../src/eval/flops.js';
import { openOrtPage } from '../test/browser/harness.js';
import { fmnistBatch, vitPair } from '../test/browser/models.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    runs: { type: 'string', default: '600' },
    batches: { type: 'string', default: '1,16' },
    block: { type: 'string' },
  },
});
const { original, fused, layers } = vitPair('paper');
const page = await openOrtPage({ original, fused });
try {
  const browser = page.page.context().browser()!.version();
  const result: Record<string, unknown> = {
    model: 'vit-tiny-fmnist',
    layersFused: layers,
    flops: { original: countFlops(original).total, fused: countFlops(fused).total },
    browser: `Chromium ${browser}`,
    onnxruntimeWeb: page.version,
    backend: 'wasm, 1 thread',
  };
  for (const batch of values.batches.split(',').map(Number)) {
    const { input } = await fmnistBatch(batch);
    // A batch under 8 runs far faster: 10x the runs, as verify and bench:latency do.
    const runs = batch < 8 ? Number(values.runs) : Math.max(30, Number(values.runs) / 10);
    const block = values.block ? Number(values.block) : batch < 8 ? 5 : 3;
    const c = await page.compareLatency(
      [page.urls.original!, page.urls.fused!],
      { input: { dims: [...input.dims], data: Array.from(input.data as Float32Array) } },
      { runs, block },
    );
    result[`batch${batch}`] = {
      runs,
      block,
      rounds: c.rounds,
      originalMs: Number(c.ms[0]!.toFixed(3)),
      fusedMs: Number(c.ms[1]!.toFixed(3)),
      fusedRatio: Number(c.ratio[1]!.toFixed(3)),
    };
  }
  if (values.json) console.log(JSON.stringify(result));
  else console.dir(result, { depth: 3 });
} finally {
  await page.close();
}
