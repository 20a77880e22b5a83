#!/usr/bin/env node
// A small static file server for the browser example, on 127.0.0.1 only:
//
//   node examples/browser/serve.mjs fused.onnx [--port 8080]
//
// serves this folder at /, onnxruntime-web's dist/ folder (its JavaScript and WebAssembly
// files) at /ort/, and the given model at /model.onnx. The browser tests use `serve` to
// mount their own pages and models the same way.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.onnx': 'application/octet-stream',
};

/** The folder of onnxruntime-web's browser builds (ort*.mjs and ort-wasm-*.wasm). */
export function ortWebDist() {
  return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

/** The file a URL path names under the mounts, or undefined (never outside a mount). */
function lookup(mounts, urlPath) {
  const path = decodeURIComponent(urlPath);
  for (const [prefix, target] of mounts) {
    if (path === prefix && !prefix.endsWith('/')) return target;
    if (!prefix.endsWith('/') || !path.startsWith(prefix)) continue;
    const file = resolve(target, `.${sep}${path.slice(prefix.length)}`);
    if (file !== target && !file.startsWith(target + sep)) return undefined;
    return file.endsWith(sep) || path.endsWith('/') ? join(file, 'index.html') : file;
  }
  return undefined;
}

/**
 * Serves files on 127.0.0.1 over HTTP.
 * @param {Record<string, string>} mounts - URL path → file, or URL prefix ending in '/' → folder
 * @param {{ port?: number }} [opts] - port 0 (the default) picks a free one
 * @returns {Promise<{ url: string, close: () => Promise<void> }>} the base URL, ending in '/'
 * @example
 * const s = await serve({ '/': 'site', '/ort/': ortWebDist() });
 */
export async function serve(mounts, opts = {}) {
  // Longest prefix first, so '/ort/' wins over '/'.
  const table = Object.entries(mounts)
    .map(([p, t]) => [p, resolve(t)])
    .sort((a, b) => b[0].length - a[0].length);
  const server = createServer((req, res) => {
    const file = lookup(table, new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    let size = -1;
    try {
      if (file) size = statSync(file).isFile() ? statSync(file).size : -1;
    } catch {
      size = -1;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (size < 0) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-store',
      // Cross-origin isolation lets onnxruntime-web use WebAssembly threads.
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', done);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((done) => server.close(() => done())),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    options: { port: { type: 'string', default: '8080' } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: node examples/browser/serve.mjs <fused.onnx> [--port 8080]\n');
    process.exit(1);
  }
  const model = resolve(positionals[0]);
  try {
    if (!statSync(model).isFile()) throw new Error('not a file');
  } catch {
    process.stderr.write(`serve: cannot read ${positionals[0]}\n`);
    process.exit(2);
  }
  const s = await serve(
    { '/': dirname(fileURLToPath(import.meta.url)), '/ort/': ortWebDist(), '/model.onnx': model },
    { port: Number(values.port) },
  );
  process.stdout.write(`serving ${s.url} (model ${positionals[0]}); Ctrl-C stops\n`);
}
