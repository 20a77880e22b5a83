#!/usr/bin/env node
// The `denoiserep` command: the compiled CLI in dist/ (npm ci and npm pack build it).
import { spawn } from 'node:child_process';

// glibc keeps memory freed on one thread for that thread's own later use, so the large
// float64 buffers of a fit, freed by the statistics pass and allocated again by the
// closed form's worker threads, counted twice (a ViT-B/16 fit peaked at 4.8 GB instead of
// 3.4 GB). Buffers of 1 MB or more are therefore given back to the system when freed:
// glibc reads the setting only at start-up, so the command restarts itself once with it,
// passing on the signals it gets and ending as its restart ends.
const THRESHOLD = 'MALLOC_MMAP_THRESHOLD_';
if (process.platform === 'linux' && process.env[THRESHOLD] === undefined) {
  await new Promise(() => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [THRESHOLD]: String(1 << 20) },
    });
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, () => child.kill(s));
    child.on('error', (err) => {
      process.stderr.write(`denoiserep: internal error: cannot start: ${err.message}\n`);
      process.exit(3);
    });
    child.on('exit', (code, signal) => {
      if (signal) {
        for (const s of signals) process.removeAllListeners(s);
        process.kill(process.pid, signal);
      }
      process.exit(code ?? 3);
    });
  });
}

let cli;
try {
  cli = await import('../dist/cli/index.js');
} catch (err) {
  // Even a tool that cannot start keeps its promise: one line, exit code 3.
  const missing =
    err?.code === 'ERR_MODULE_NOT_FOUND' && /dist[\\/]cli[\\/]index\.js/.test(err.message);
  process.stderr.write(
    missing
      ? 'denoiserep: internal error: dist/ is not built (run npm run build)\n'
      : `denoiserep: internal error: cannot start: ${String(err?.message ?? err).split('\n')[0]}\n`,
  );
  process.exit(3);
}
await cli.main(process.argv);
