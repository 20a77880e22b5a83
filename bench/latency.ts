// Latency benchmark: a fused DenoiseRep model against its original (identical graphs, so
// the ratio should be 1 within measurement noise) and DenoiseRep~ (extra reverse steps on
// the feature) against the original, at batch 1 and 64, interleaved in blocks.
// Prints one JSON object with --json.
import { parseArgs } from 'node:util';
import { fuseModel } from '../src/denoise/fuse.js';
import { initDenoisers, planConversion } from '../src/denoise/plan.js';
import { attachTilde, initTilde } from '../src/denoise/tilde.js';
import { countFlops } from '../src/eval/flops.js';
import { compareLatency } from '../src/eval/latency.js';
import { buildBackbone, getPreset } from '../src/models/registry.js';
import { float32 } from '../src/onnx/tensor.js';
import { Rng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    model: { type: 'string', default: 'vit-tiny-fmnist' },
    runs: { type: 'string', default: '600' },
    threads: { type: 'string' },
    steps: { type: 'string', default: '5' },
  },
});
const def = getPreset(values.model);
const base = buildBackbone(def, 'eval', 0).b.build().model;
const plan = planConversion(base.graph, {});
const fused = fuseModel(base, plan, initDenoisers(plan, 0));
const tcfg = { steps: Number(values.steps) };
const tilde = attachTilde(base, initTilde(def.featureDim, tcfg, 0), def.featureDim, tcfg);
const threads = values.threads ? Number(values.threads) : undefined;
const rng = new Rng(0);
const result: Record<string, unknown> = {
  model: def.name,
  layersFused: plan.layers.length,
  flops: {
    original: countFlops(base).total,
    fused: countFlops(fused).total,
    tilde: countFlops(tilde).total,
  },
};
for (const batch of [1, 64]) {
  const n = batch * def.inputShape.reduce((a, b) => a * b, 1);
  const x = {
    input: float32([batch, ...def.inputShape], rng.fillUniform(new Float32Array(n), 0, 1)),
  };
  const runs = batch === 1 ? Number(values.runs) : Math.max(30, Number(values.runs) >> 2);
  const c = await compareLatency([base, fused, tilde], x, { runs, threads });
  result[`batch${batch}`] = {
    runs,
    originalMs: Number(c.ms[0]!.toFixed(3)),
    fusedMs: Number(c.ms[1]!.toFixed(3)),
    tildeMs: Number(c.ms[2]!.toFixed(3)),
    fusedRatio: Number(c.ratio[1]!.toFixed(3)),
    tildeRatio: Number(c.ratio[2]!.toFixed(3)),
  };
}
if (values.json) console.log(JSON.stringify(result));
else console.dir(result, { depth: 3 });
