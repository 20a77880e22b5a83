// Classifies a dropped image with a fused DenoiseRep model in onnxruntime-web (WebAssembly)
// and shows the top-5 classes and the time taken. Served by serve.mjs, which puts
// onnxruntime-web's files at ./ort/ and the model at ./model.onnx.
// URL parameters: ?model=<url>, ?labels=a,b,c (default: Fashion-MNIST's ten classes),
// ?mean=0.485,0.456,0.406&std=0.229,0.224,0.225 (default: none, pixels in [0, 1] as the
// project's presets take them).
/* global document, location, URL, URLSearchParams, createImageBitmap, OffscreenCanvas */
import * as ort from './ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = new URL('./ort/', import.meta.url).href;

const FASHION_MNIST = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
const params = new URLSearchParams(location.search);
const list = (name) => params.get(name)?.split(',');
const $ = (id) => document.getElementById(id);

function fail(err) {
  $('status').textContent = `Error: ${err.message ?? err}`;
  document.body.dataset.state = 'error';
}

/** Pixels of an image file as a [1, C, H, W] tensor in [0, 1], normalised if asked. */
async function toTensor(file, [c, h, w]) {
  const bitmap = await createImageBitmap(file, {
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const preview = $('preview');
  [preview.width, preview.height] = [w, h];
  preview.getContext('2d').drawImage(bitmap, 0, 0, w, h);
  const mean = list('mean')?.map(Number) ?? [];
  const std = list('std')?.map(Number) ?? [];
  const x = new Float32Array(c * h * w);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    const channels = c === 1 ? [(r + g + b) / 3] : [r, g, b];
    channels.forEach((v, k) => {
      const m = mean[k] ?? mean[0] ?? 0;
      const s = std[k] ?? std[0] ?? 1;
      x[k * h * w + i] = (v / 255 - m) / s;
    });
  }
  return new ort.Tensor('float32', x, [1, c, h, w]);
}

function softmax(logits) {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function show(probs, labels, ms) {
  const top = probs
    .map((p, i) => ({ p, i }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 5);
  $('top5').replaceChildren(
    ...top.map(({ p, i }) => {
      const li = document.createElement('li');
      li.dataset.index = String(i);
      li.dataset.label = labels[i] ?? `class ${i}`;
      const name = document.createElement('span');
      name.textContent = li.dataset.label;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, 100 * p)}%`;
      const pct = document.createElement('span');
      pct.textContent = `${(100 * p).toFixed(1)}%`;
      li.append(name, bar, pct);
      return li;
    }),
  );
  $('time').textContent =
    `Inference: ${ms.toFixed(1)} ms (onnxruntime-web ${ort.env.versions.web}, WebAssembly)`;
}

try {
  const session = await ort.InferenceSession.create(params.get('model') ?? 'model.onnx', {
    executionProviders: ['wasm'],
  });
  const [input] = session.inputMetadata;
  const dims = input.shape.slice(1).map(Number); // [C, H, W]; the batch dim is symbolic
  if (dims.length !== 3 || dims.some((d) => !(d > 0)))
    throw new Error(`the model's input ${input.name} is [${input.shape}], not [N, C, H, W]`);
  const output = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
  // One run on a blank image first: the first run of a session sets up its kernels, and
  // the time shown should be what every later image costs.
  const zeros = new ort.Tensor('float32', new Float32Array(dims[0] * dims[1] * dims[2]), [
    1,
    ...dims,
  ]);
  await session.run({ [input.name]: zeros });
  $('status').textContent = `Model ready: input ${input.name} [${input.shape}], output ${output}.`;
  document.body.dataset.state = 'ready';

  const classify = async (file) => {
    if (!file) return;
    document.body.dataset.state = 'busy';
    const x = await toTensor(file, dims);
    const t0 = performance.now();
    const res = await session.run({ [input.name]: x });
    const ms = performance.now() - t0;
    const logits = Array.from(res[output].data);
    show(softmax(logits), list('labels') ?? (logits.length === 10 ? FASHION_MNIST : []), ms);
    $('status').textContent = `${file.name}: the five most likely classes`;
    document.body.dataset.state = 'done';
  };
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    classify(e.dataTransfer.files[0]).catch(fail);
  });
  $('file').addEventListener('change', (e) => classify(e.target.files[0]).catch(fail));
} catch (err) {
  fail(err);
}
