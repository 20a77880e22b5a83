// Runs ONNX models with onnxruntime-web (WebAssembly, one thread) for the browser tests and
// the browser benchmark, which call window.harness through Playwright.
/* global window, fetch */
import * as ort from '/ort/ort.wasm.min.mjs';

ort.env.wasm.wasmPaths = '/ort/';
// One thread: the same on every machine and browser, with or without cross-origin isolation.
ort.env.wasm.numThreads = 1;

const cache = new Map();

/** The model's bytes, fetched once per URL. */
async function modelBytes(url) {
  if (!cache.has(url)) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    cache.set(url, new Uint8Array(await res.arrayBuffer()));
  }
  return cache.get(url);
}

function open(url) {
  return modelBytes(url).then((bytes) =>
    ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    }),
  );
}

function feedsOf(feed) {
  const out = {};
  for (const [name, t] of Object.entries(feed))
    out[name] = new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/**
 * Every output of a model for one feed, as plain arrays.
 * @param url - the model
 * @param feed - input name → { dims, data }
 */
async function run(url, feed) {
  const s = await open(url);
  try {
    const res = await s.run(feedsOf(feed));
    const out = {};
    for (const name of s.outputNames)
      out[name] = { dims: [...res[name].dims], data: Array.from(res[name].data) };
    return out;
  } finally {
    await s.release();
  }
}

/**
 * Latency of several models on one feed, measured as src/eval/latency.ts's compareLatency
 * does in Node: rounds in which every model gets a fresh session, 3 warm-up runs and one
 * timed block, its session released before the next model's is created, the order rotated
 * from round to round; the ratio to the first model is the median over rounds of the
 * ratio of block medians (drift between rounds cancels). `events` records each session's
 * creation and release, so the caller can check that one session was alive at a time.
 */
async function compareLatency(urls, feed, opts = {}) {
  const runs = opts.runs ?? 50;
  const block = Math.max(3, opts.block ?? Math.max(5, Math.round(runs / 20)));
  const feeds = feedsOf(feed);
  for (const url of urls) await modelBytes(url);
  const times = urls.map(() => []);
  const rounds = urls.map(() => []);
  const events = [];
  for (let round = 0; times[0].length < runs; round++) {
    for (let j = 0; j < urls.length; j++) {
      const k = (j + round) % urls.length;
      const s = await open(urls[k]);
      events.push({ round, model: k, event: 'create' });
      try {
        for (let i = 0; i < 3; i++) await s.run(feeds);
        const t = [];
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          await s.run(feeds);
          t.push(performance.now() - t0);
        }
        times[k].push(...t);
        rounds[k].push(median(t));
      } finally {
        await s.release();
        events.push({ round, model: k, event: 'release' });
      }
    }
  }
  return {
    runs: times.map((t) => t.length),
    ms: times.map(median),
    ratio: rounds.map((r) => median(r.map((v, i) => v / rounds[0][i]))),
    rounds: rounds[0].length,
    events,
  };
}

window.harness = { run, compareLatency, version: ort.env.versions.web };
