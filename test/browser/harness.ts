// Node side of the browser tests and of `npm run bench:browser`: finds Chromium, serves a
// page, onnxruntime-web's files and models on 127.0.0.1, and calls the page's
// window.harness (test/browser/page/harness.js) through Playwright.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ortWebDist, serve } from '../../examples/browser/serve.mjs';
import { writeModel } from '../../src/onnx/serialize.js';
import type { Model } from '../../src/onnx/ir.js';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

/**
 * The Chromium to drive: $CHROMIUM_PATH, else the first of chromium, chromium-browser,
 * google-chrome on the PATH. Throws (never skips) when there is none: the browser tests
 * are part of the suite, and .ci/run installs Debian's chromium.
 */
export function findChromium(): string {
  const env = process.env.CHROMIUM_PATH;
  if (env) {
    if (!existsSync(env)) throw new Error(`CHROMIUM_PATH=${env} does not exist`);
    return env;
  }
  for (const name of ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // not on the PATH; try the next name
    }
  }
  throw new Error('no Chromium found: install it (apt-get install chromium) or set CHROMIUM_PATH');
}

/** Headless Chromium. `--no-sandbox` because CI runs as root, where the sandbox refuses. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: findChromium(), args: ['--no-sandbox'] });
}

/** A float32 feed as the page takes it. */
export interface PageTensor {
  dims: number[];
  data: number[];
}

export interface BrowserLatency {
  /** Timed runs per model. */
  runs: number[];
  /** Median latency per model (ms per run). */
  ms: number[];
  /** Median over rounds of each model's block median over the first model's. */
  ratio: number[];
  rounds: number;
  events: { round: number; model: number; event: 'create' | 'release' }[];
}

/** A page with onnxruntime-web loaded, and the models it can fetch. */
export interface OrtPage {
  page: Page;
  /** onnxruntime-web's version. */
  version: string;
  /** URL of each model given to openOrtPage, by name. */
  urls: Record<string, string>;
  /** Every output of a model for one feed. */
  run(url: string, feed: Record<string, PageTensor>): Promise<Record<string, PageTensor>>;
  compareLatency(
    urls: string[],
    feed: Record<string, PageTensor>,
    opts?: { runs?: number; block?: number },
  ): Promise<BrowserLatency>;
  close(): Promise<void>;
}

/**
 * Writes the models to a temporary folder, serves them with the harness page and
 * onnxruntime-web, and opens the page in a fresh headless Chromium.
 * @param models - name → model (served as /models/<name>.onnx)
 */
export async function openOrtPage(models: Record<string, Model>): Promise<OrtPage> {
  const dir = mkdtempSync(join(tmpdir(), 'denoiserep-browser-'));
  for (const [name, m] of Object.entries(models)) writeModel(join(dir, `${name}.onnx`), m);
  const server = await serve({
    '/': join(here, 'page'),
    '/ort/': ortWebDist(),
    '/models/': dir,
  });
  // Without a browser, the server must not stay open: it would hold the test process alive.
  const browser = await launchChromium().catch(async (e: unknown) => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const close = async () => {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(server.url);
    await page
      .waitForFunction('window.harness !== undefined', null, { timeout: 60_000 })
      .catch((e: Error) => {
        throw new Error(`the harness page did not load: ${errors.join('; ') || e.message}`);
      });
    // Calls go in as strings: functions compiled by tsx carry helpers the page lacks.
    const call = <T>(fn: string, ...args: unknown[]): Promise<T> =>
      page.evaluate<T>(`window.harness.${fn}(...${JSON.stringify(args)})`);
    return {
      page,
      version: await page.evaluate<string>('window.harness.version'),
      urls: Object.fromEntries(Object.keys(models).map((n) => [n, `/models/${n}.onnx`])),
      run: (url, feed) => call('run', url, feed),
      compareLatency: (urls, feed, opts = {}) => call('compareLatency', urls, feed, opts),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
