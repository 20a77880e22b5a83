// Engine benchmark: ViT-tiny (dim 128, depth 6, 4 heads, MLP 256, patch 4, 28x28x1),
// batch 128. Prints one JSON object with --json:
//   { forwardMs, trainStepMs, trainGflops, peakRssMb, ... }
// forwardMs: evaluation-graph forward; trainStepMs: forward + backward + AdamW update,
// both medians over interleaved rounds (see below).
// FLOPs of a training step are counted as 3x the forward's (the usual convention).
// Targets (issue): trainStepMs <= 4 * forwardMs, trainGflops >= 70, peakRssMb <= 1500.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { countFlops } from '../src/eval/flops.js';
import { buildBackbone, getPreset } from '../src/models/registry.js';
import { float32 } from '../src/onnx/tensor.js';
import { Session } from '../src/runtime/session.js';
import { crossEntropy, oneHot, TARGET_NAME } from '../src/train/losses.js';
import { AdamW } from '../src/train/optim.js';
import { ParamStore } from '../src/models/params.js';
import { Rng } from '../src/util/rng.js';
import { TrainStep } from '../src/train/step.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    batch: { type: 'string', default: '128' },
    steps: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string' },
    model: { type: 'string', default: 'vit-tiny-fmnist' },
  },
});
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const threads = values.threads ? Number(values.threads) : undefined;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let peakRss = process.memoryUsage().rss;
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};

const def = getPreset(values.model);
const rng = new Rng(0);
const [c, h, w] = def.inputShape;
const x = float32([batch, c, h, w], rng.fillNormal(new Float32Array(batch * c * h * w)));
const labels = Array.from({ length: batch }, () => rng.int(def.numClasses));

// Forward (evaluation graph) and training step (forward + backward + AdamW), timed in
// interleaved rounds: each round runs a block of forwards, then a block of steps, dropping
// the first run of each block (the other session's threads may still be spinning), so
// that drift in machine load hits both alike and the ratio stays meaningful.
const evalG = buildBackbone(def, 'eval', 0).b.build();
const fwd = await Session.create(evalG.model, { threads });

const tg = buildBackbone(def, 'train', 0);
const { loss } = crossEntropy(tg.b, tg.logits, def.numClasses);
tg.b.output(loss, 'loss');
const built = tg.b.build();
const store = ParamStore.fromInitializers(built.model.graph.initializers, [
  ...built.params,
  ...built.buffers,
]);
const step = await TrainStep.create({
  model: built.model,
  loss: 'loss',
  trainable: built.params,
  fed: built.buffers,
  bufferUpdates: new Map([...tg.ctx.bufferUpdates].map(([k, v]) => [k, v.name])),
  session: { threads },
});
const opt = new AdamW(store, [{ name: 'all', params: built.params, weightDecay: 0.05 }], {
  betas: [0.9, 0.999],
  eps: 1e-8,
});
const target = float32([batch, def.numClasses], oneHot(labels, def.numClasses));
const fwdTimes: number[] = [];
const stepTimes: number[] = [];
let firstLoss = 0;
let lastLoss = 0;
let stepsRun = 0;
const forward = async () => {
  const t0 = performance.now();
  await fwd.run({ input: x }, ['logits']);
  sample();
  return performance.now() - t0;
};
const trainStep = async () => {
  const t0 = performance.now();
  const r = await step.run({ input: x, [TARGET_NAME]: target }, store);
  opt.step(r.grads, 1e-3);
  const ms = performance.now() - t0;
  if (stepsRun++ === 0) firstLoss = r.loss;
  lastLoss = r.loss;
  sample();
  return ms;
};
for (let i = 0; i < warmup; i++) {
  await forward();
  await trainStep();
}
const BLOCK = 3;
while (stepTimes.length < steps) {
  for (let i = 0; i <= BLOCK; i++) {
    const ms = await forward();
    if (i > 0) fwdTimes.push(ms);
  }
  for (let i = 0; i <= BLOCK; i++) {
    const ms = await trainStep();
    if (i > 0) stepTimes.push(ms);
  }
}
await fwd.release();
await step.release();

const forwardMs = median(fwdTimes);
const trainStepMs = median(stepTimes);
const fwdFlops = countFlops(evalG.model).total * batch;
const TARGETS = { ratioMax: 4, trainGflopsMin: 70, peakRssMbMax: 1500 };
const ratio = Number((trainStepMs / forwardMs).toFixed(2));
const trainGflops = Number(((3 * fwdFlops) / (trainStepMs / 1000) / 1e9).toFixed(1));
const peakRssMb = Math.round(peakRss / 2 ** 20);
const result = {
  model: def.name,
  batch,
  threads: threads ?? 'all',
  forwardMs: Number(forwardMs.toFixed(1)),
  trainStepMs: Number(trainStepMs.toFixed(1)),
  ratio,
  forwardGflopsPerImage: Number((fwdFlops / batch / 1e9).toFixed(4)),
  trainGflops,
  peakRssMb,
  lossFirst: Number(firstLoss.toFixed(4)),
  lossLast: Number(lastLoss.toFixed(4)),
  targets: TARGETS,
  meets: {
    ratio: ratio <= TARGETS.ratioMax,
    trainGflops: trainGflops >= TARGETS.trainGflopsMin,
    peakRssMb: peakRssMb <= TARGETS.peakRssMbMax,
  },
};
if (values.json) console.log(JSON.stringify(result));
else console.table(result);
