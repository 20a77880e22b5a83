// A fused model runs in the browser: onnxruntime-web (WebAssembly) in headless Chromium
// gives the outputs onnxruntime-node gives, for the original and the fused ViT-tiny, on
// real Fashion-MNIST images; and the page measures the latency ratio fused/original the
// way compareLatency does in Node. Needs Chromium (.ci/run installs it); never skipped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Model } from '../../src/onnx/ir.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { relErr } from '../denoise/helpers.js';
import { openOrtPage, type OrtPage, type PageTensor } from './harness.js';
import { fmnistBatch, vitPair } from './models.js';

let page: OrtPage;
let models: { original: Model; fused: Model; layers: number };
let batch: { input: Tensor; labels: number[] };

const toPage = (t: Tensor): PageTensor => ({
  dims: [...t.dims],
  data: Array.from(t.data as Float32Array),
});

async function nodeOutputs(model: Model, input: Tensor): Promise<Record<string, Tensor>> {
  const s = await Session.create(model, { threads: 1 });
  try {
    return await s.run({ input });
  } finally {
    await s.release();
  }
}

before(async () => {
  models = vitPair();
  batch = await fmnistBatch(8);
  page = await openOrtPage({ original: models.original, fused: models.fused });
});
after(() => page?.close());

describe('onnxruntime-web in Chromium', () => {
  test('original and fused ViT-tiny: the outputs onnxruntime-node gives (relative error <= 1e-5)', async (t) => {
    assert.equal(models.layers, 26);
    const outs: Record<string, Record<string, PageTensor>> = {};
    for (const name of ['original', 'fused'] as const) {
      const node = await nodeOutputs(models[name], batch.input);
      const web = await page.run(page.urls[name]!, { input: toPage(batch.input) });
      assert.deepEqual(Object.keys(web).sort(), ['feature', 'logits']);
      for (const [out, want] of Object.entries(node)) {
        assert.deepEqual(web[out]!.dims, [...want.dims], `${name} ${out} dims`);
        const e = relErr(web[out]!.data, want.data as Float32Array);
        t.diagnostic(`${name} ${out}: max relative error web vs node ${e.toExponential(2)}`);
        assert.ok(e <= 1e-5, `${name} ${out}: relative error ${e}`);
      }
      outs[name] = web;
    }
    // The denoisers are strong: fused and original outputs differ, so agreement above is
    // about the fused weights, not about a model that fusion left unchanged.
    const d = relErr(outs.fused!.feature!.data, outs.original!.feature!.data);
    assert.ok(d > 1e-2, `fused and original features differ by only ${d}`);
  });

  test('latency fused/original: interleaved rounds, one session alive at a time, order rotated', async (t) => {
    const one = { input: toPage(batch.input) };
    one.input.dims[0] = 1;
    one.input.data = one.input.data.slice(0, 28 * 28);
    const urls = [page.urls.original!, page.urls.fused!];
    const c = await page.compareLatency(urls, one, { runs: 40, block: 5 });
    t.diagnostic(
      `onnxruntime-web ${page.version}: ${JSON.stringify({ ms: c.ms, ratio: c.ratio })}`,
    );
    assert.ok(c.runs.every((r) => r >= 40));
    assert.equal(c.rounds, 8);
    assert.equal(c.ratio[0], 1);
    assert.ok(c.ms.every((m) => Number.isFinite(m) && m > 0));
    assert.ok(Number.isFinite(c.ratio[1]) && c.ratio[1]! > 0);
    // Sessions open and close in pairs: never two alive at once.
    c.events.forEach((e, i) => assert.equal(e.event, i % 2 === 0 ? 'create' : 'release'));
    // Each round times both models, the first of them alternating.
    for (let r = 0; r < c.rounds; r++) {
      const created = c.events.filter((e) => e.round === r && e.event === 'create');
      assert.deepEqual(
        created.map((e) => e.model),
        r % 2 === 0 ? [0, 1] : [1, 0],
      );
    }
  });
});
