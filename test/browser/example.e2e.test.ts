// The browser example as a user meets it: `node examples/browser/serve.mjs fused.onnx`,
// the page opened in headless Chromium, a Fashion-MNIST test image dropped on it. The
// top-5 it shows must be onnxruntime-node's for the same pixels, and its screenshot must
// not be blank. Needs Chromium (.ci/run installs it); never skipped.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { writeModel } from '../../src/onnx/serialize.js';
import { float32 } from '../../src/onnx/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { launchChromium, repoRoot } from './harness.js';
import { vitPair } from './models.js';

const dir = mkdtempSync(join(tmpdir(), 'denoiserep-example-'));
const modelPath = join(dir, 'fused.onnx');
let server: ChildProcess;
let url: string;
let browser: Browser;

/** Starts the example's server as the README says, on a free port; resolves its URL. */
function startServer(): Promise<string> {
  server = spawn(
    process.execPath,
    [join(repoRoot, 'examples', 'browser', 'serve.mjs'), modelPath, '--port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((done, fail) => {
    let out = '';
    server.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) done(m[1]!);
    });
    server.stderr!.on('data', (c: Buffer) => fail(new Error(`serve.mjs: ${c.toString()}`)));
    server.on('exit', (code) => fail(new Error(`serve.mjs exited with ${code}: ${out}`)));
  });
}

before(async () => {
  writeModel(modelPath, vitPair().fused);
  url = await startServer();
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Variance of the grey levels of a PNG: 0 for a blank page. */
async function greyVariance(png: Buffer): Promise<number> {
  const px = await sharp(png).greyscale().raw().toBuffer();
  let sum = 0;
  let sq = 0;
  for (const v of px) {
    sum += v;
    sq += v * v;
  }
  const mean = sum / px.length;
  return sq / px.length - mean * mean;
}

describe('examples/browser', () => {
  test('a dropped Fashion-MNIST image: the top-5 of onnxruntime-node, and a page that is not blank', async (t) => {
    // Test image 0 as the 28x28 grey PNG a user would drop.
    const testSet = await loadFashionMnist('embedded', 'test');
    const pixels = Uint8Array.from(testSet.images.subarray(0, 784), (v) => Math.round(v * 255));
    const png = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();

    // onnxruntime-node on the same pixels: the expected ranking.
    const s = await Session.create(vitPair().fused, { threads: 1 });
    const logits = Array.from(
      (
        await s.run({
          input: float32(
            [1, 1, 28, 28],
            Float32Array.from(pixels, (v) => v / 255),
          ),
        })
      ).logits!.data as Float32Array,
    );
    await s.release();
    const ranked = logits.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v);
    // A clear gap between neighbours, so that the comparison below means something.
    for (let k = 0; k < 5; k++) assert.ok(ranked[k]!.v - ranked[k + 1]!.v > 1e-3);
    const p = logits.map((v) => Math.exp(v - ranked[0]!.v));
    const sum = p.reduce((a, b) => a + b, 0);

    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]');
    assert.equal(await page.getAttribute('body', 'data-state'), 'ready', errors.join('; '));

    // Drop the file: a DataTransfer holding it, dispatched as a drop event on the zone.
    // (A string, not a function: functions compiled by tsx carry helpers the page lacks.)
    const transfer = await page.evaluateHandle(`(() => {
      const bytes = Uint8Array.from(atob('${png.toString('base64')}'), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'fashion-mnist-test-0.png', { type: 'image/png' }));
      return dt;
    })()`);
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
    await page.waitForSelector('body[data-state="done"], body[data-state="error"]');
    const status = await page.textContent('#status');
    assert.equal(await page.getAttribute('body', 'data-state'), 'done', `${status} ${errors}`);

    // (The project's types have no DOM: the list items are typed by what is used of them.)
    type Item = { getAttribute(name: string): string | null; textContent: string | null };
    const shown = await page.$$eval('#top5 li', (lis: Item[]) =>
      lis.map((li) => ({
        index: Number(li.getAttribute('data-index')),
        label: li.getAttribute('data-label'),
        text: li.textContent,
      })),
    );
    t.diagnostic(`shown: ${shown.map((r) => r.text).join(' | ')}`);
    assert.deepEqual(
      shown.map((r) => r.index),
      ranked.slice(0, 5).map((r) => r.i),
    );
    const names = testSet.classNames!;
    assert.equal(shown[0]!.label, names[ranked[0]!.i]);
    for (const r of shown) {
      const pct = Number(/([\d.]+)%$/.exec(r.text!)![1]);
      assert.ok(Math.abs(pct - (100 * p[r.index]!) / sum) <= 0.051, `${r.text}`);
    }
    assert.match((await page.textContent('#time'))!, /^Inference: \d+\.\d ms \(onnxruntime-web/);

    const shot = await page.screenshot({ fullPage: true });
    writeFileSync(join(process.env.DENOISEREP_SCREENSHOT_DIR ?? dir, 'example.png'), shot);
    const variance = await greyVariance(shot);
    t.diagnostic(`screenshot grey-level variance ${variance.toFixed(0)}`);
    assert.ok(variance > 100, `screenshot looks blank (variance ${variance})`);
    await page.close();
  });
});
