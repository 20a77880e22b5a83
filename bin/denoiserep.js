#!/usr/bin/env node
// The `denoiserep` command: the compiled CLI in dist/ (npm ci and npm pack build it).
import { spawn } from 'node:child_process';

// glibc's allocator, set for a fit's large float64 buffers. It reads its settings only at
// start-up, so the command restarts itself once with the setting unless its caller made
// one, passing on the signals it gets and ending as its restart ends.
// Buffers of 1 MB or more are given back to the system when freed: glibc otherwise keeps
// memory freed on one thread for that thread's later use, so the buffers the statistics
// pass freed and the closed form's worker threads allocated again counted twice (a
// ViT-B/16 fit peaked at 4.8 GB with glibc's defaults, 3.3 GB with this setting). The
// price is a fresh zero-filled mapping for every such buffer, about a fifth of the closed
// form's time in the kernel. With memory to spare, MALLOC_ARENA_MAX=1
// MALLOC_MMAP_THRESHOLD_=134217728 MALLOC_TRIM_THRESHOLD_=268435456, set by the caller,
// reuse them instead: the closed form about 10 % faster, but
// `fit` on a ViT-B/16 peaked at 4.0 to 4.1 GB instead of 3.3 GB (README, "Real size").
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
