// Fit benchmark at real size: the closed-form `fit` pipeline on a timm-shaped ViT-B/16 at
// 224x224 (preset `vit-b16`: 86M parameters, 50 layers: patch embedding, each block's qkv,
// attn.proj, fc1 and 3,072-wide fc2, and the head), on N random images, against one
// inference pass over the same images. Prints one JSON object with --json.
//
//   inferenceS      one forward pass of the model over the N images (after one warm-up batch)
//   statisticsS     the statistics pass (per-layer float64 moments, session included)
//   linalgS         the linear algebra of all layers: the closed-form fit with the spectra,
//                   the fusion products (W·Wd, Wd·W for a conv) and the fusion
//   verifyS      verification on the first images, as many as `fit` uses (FIT_VERIFY_IMAGES)
//   diagnosticsS, writeS (writing is off unless --out)
//   fitS            everything the pipeline did, as `denoiserep fit` does it
//   cpuS            the same in CPU seconds of the process (all threads), steadier than wall
//                   time on a shared machine
//   peakRssMb       the process's peak resident set (native memory included); the npm script
//                   sets glibc's allocator as the `denoiserep` command does (`malloc`;
//                   bin/denoiserep.js says why)
//   meets           the targets: fitS − linalgS <= 1.5 x inferenceS, linalgS <= 60,
//                   peakRssMb <= 4096 (at batch 32)
//
// On a shared machine, compare inferenceS with the fit's other figures from the same run.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { feedBatches, type ImageDataset } from '../src/data/dataset.js';
import { FIT_VERIFY_IMAGES } from '../src/denoise/api/fit.js';
import { gramEntries } from '../src/denoise/fit.js';
import { runPipeline, type PipelineStage } from '../src/denoise/pipeline.js';
import { planConversion } from '../src/denoise/plan.js';
import { countFlops } from '../src/eval/flops.js';
import { buildBackbone, getPreset } from '../src/models/registry.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/rng.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    model: { type: 'string', default: 'vit-b16' },
    images: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    threads: { type: 'string' },
    workers: { type: 'string' },
    layers: { type: 'string', default: 'all' },
    losses: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const n = Number(values.images);
const batch = Number(values.batch);
const threads = values.threads ? Number(values.threads) : undefined;
const fitWorkers = values.workers ? Number(values.workers) : undefined;
const s = (ms: number) => Number((ms / 1000).toFixed(2));

const def = getPreset(values.model);
const model = buildBackbone(def, 'eval', 0).b.build().model;
const params = [...model.graph.initializers.values()].reduce((a, t) => a + t.data.length, 0);
const plan = planConversion(model.graph, { filter: values.layers });
const [c, h, w] = def.inputShape;
const rng = new Rng(0);
const data: ImageDataset = {
  name: 'random',
  size: n,
  channels: c,
  height: h,
  width: w,
  numClasses: def.numClasses,
  images: rng.fillUniform(new Float32Array(n * c * h * w), 0, 1),
  labels: new Int32Array(n).fill(-1),
};

// CPU seconds of this process (every thread): on a machine shared with other work the
// process gets a varying share of the cores, and its CPU time varies much less than wall.
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// One inference pass over the same images, batch by batch (the session is made first).
const infer = await Session.create(model, { threads });
await infer.run(feedBatches(data, 'input', Math.min(batch, n)).next().value!); // warm-up
let t0 = performance.now();
let cpu0 = cpu();
for (const feeds of feedBatches(data, 'input', batch)) await infer.run(feeds);
const inferenceMs = performance.now() - t0;
const inferenceCpu = cpu() - cpu0;
await infer.release();
const inferRss = process.resourceUsage().maxRSS / 1024;

// The pipeline as `fit` runs it, timed stage by stage from its progress events.
const marks: {
  stage: PipelineStage;
  done: number;
  total: number;
  at: number;
  rss: number;
  cpu: number;
}[] = [];
const maxRss = () => process.resourceUsage().maxRSS / 1024;
t0 = performance.now();
cpu0 = cpu();
const first = feedBatches(data, 'input', Math.min(batch, FIT_VERIFY_IMAGES)).next().value!;
const result = await runPipeline({
  model,
  plan,
  seed: 0,
  threads,
  fitWorkers,
  method: { kind: 'closed-form', images: { data, inputName: 'input', batchSize: batch } },
  verify: { inputs: first, latencyBatches: [], requireOk: true },
  ...(values.losses ? { losses: { data, batchSize: batch } } : {}),
  ...(values.out ? { files: { model: values.out } } : {}),
  onProgress: (e) => marks.push({ ...e, at: performance.now(), rss: maxRss(), cpu: cpu() }),
});
const fitMs = performance.now() - t0;
const fitCpu = cpu() - cpu0;
const mark = (stage: PipelineStage, done: 0 | 1) =>
  marks.find((m) => m.stage === stage && (done === 0 ? m.done === 0 : m.done === m.total))!;
const at = (stage: PipelineStage, done: 0 | 1) => mark(stage, done).at;
const statsMark = marks.filter((m) => m.stage === 'statistics').at(-1)!;
const statsEnd = statsMark.at;
const cpuOf = (a: { cpu: number }, b: { cpu: number }) => Number((b.cpu - a.cpu).toFixed(2));
const linalgCpu = mark('fuse', 1).cpu - statsMark.cpu;
const closedFormMs = at('fuse', 0) - statsEnd;
const fuseMs = at('fuse', 1) - at('fuse', 0);
const linalgMs = closedFormMs + fuseMs;
const rss = process.resourceUsage().maxRSS / 1024;
const widths = new Map<number, number>();
for (const p of plan.layers) widths.set(p.dim, (widths.get(p.dim) ?? 0) + 1);

// Floating-point work per image: the forward (float32) and the statistics' Gram matrices
// (float64, rows x dim² multiply-adds each, three quarters of that for the layers whose
// Gram matrix is taken as its upper block triangle), to show what bounds the statistics.
const forwardGflops = countFlops(model).total / 1e9;
const patch = (def.config as { patch?: number }).patch ?? 16;
const tokens = (h / patch) ** 2 + 1;
const gramGflops =
  plan.layers.reduce((a, p) => {
    const rows = p.layer.name === 'head' ? 1 : p.side === 'output' ? tokens - 1 : tokens;
    return a + 2 * rows * gramEntries(p.dim);
  }, 0) / 1e9;

const out = {
  model: def.name,
  parameters: params,
  layers: plan.layers.length,
  layerWidths: Object.fromEntries(widths),
  images: n,
  batch,
  threads: threads ?? 'all cores',
  fitWorkers: fitWorkers ?? 'default',
  // glibc's setting (npm run bench:fit sets it, as the denoiserep command does)
  malloc: Object.fromEntries(
    ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_'].map((k) => [
      k,
      process.env[k] ?? null,
    ]),
  ),
  inferenceS: s(inferenceMs),
  statisticsS: s(statsEnd - t0),
  linalgS: s(linalgMs),
  closedFormS: s(closedFormMs),
  fuseS: s(fuseMs),
  verifyS: s(at('verify', 1) - at('verify', 0)),
  diagnosticsS: s(at('diagnostics', 1) - at('diagnostics', 0)),
  fitS: s(fitMs),
  fitOverInference: Number(((fitMs - linalgMs) / inferenceMs).toFixed(2)),
  statisticsOverInference: Number(((statsEnd - t0) / inferenceMs).toFixed(2)),
  gflopsPerImage: {
    forward: Number(forwardGflops.toFixed(1)),
    gram: Number(gramGflops.toFixed(1)),
  },
  cpuS: {
    inference: Number(inferenceCpu.toFixed(2)),
    statistics: Number((statsMark.cpu - cpu0).toFixed(2)),
    linalg: Number(linalgCpu.toFixed(2)),
    closedForm: cpuOf(statsMark, mark('fuse', 0)),
    fuse: cpuOf(mark('fuse', 0), mark('fuse', 1)),
    verify: cpuOf(mark('verify', 0), mark('verify', 1)),
    diagnostics: cpuOf(mark('diagnostics', 0), mark('diagnostics', 1)),
    fit: Number(fitCpu.toFixed(2)),
  },
  cpuFitOverInference: Number(((fitCpu - linalgCpu) / inferenceCpu).toFixed(2)),
  peakRssMb: Math.round(rss),
  // The peak so far at the end of each stage: where the memory goes.
  peakRssMbAfter: {
    inference: Math.round(inferRss),
    statistics: Math.round(marks.filter((m) => m.stage === 'statistics').at(-1)!.rss),
    closedForm: Math.round(mark('fuse', 0).rss),
    fuse: Math.round(mark('fuse', 1).rss),
    verify: Math.round(mark('verify', 1).rss),
    diagnostics: Math.round(mark('diagnostics', 1).rss),
  },
  verified: result.verification?.ok,
  maxRelError: Math.max(...(result.verification?.layers ?? []).map((e) => e.maxRel)),
  spectraLayers: result.layers.filter((l) => l.singularValues).length,
  meets: {
    fitTime: fitMs - linalgMs <= 1.5 * inferenceMs,
    linalg: linalgMs <= 60_000,
    peakRss: rss <= 4096,
  },
};
if (values.json) console.log(JSON.stringify(out));
else console.dir(out, { depth: 3 });
