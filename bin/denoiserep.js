#!/usr/bin/env node
// The `denoiserep` command: the compiled CLI in dist/ (npm ci and npm pack build it).
import { spawn } from 'node:child_process';

// glibc's allocator, set for a fit's large float64 buffers. It reads its settings only at
// start-up, so the command restarts itself once with those the caller has not set, passing
// on the signals it gets and ending as its restart ends.
// - One arena for all threads: memory freed by the statistics pass then serves the closed
//   form's worker threads, instead of counting twice (a ViT-B/16 fit peaked at 4.8 GB with
//   glibc's defaults, 3.7 GB with these settings).
// - Buffers up to 128 MB come from the heap and are reused, instead of being mapped on
//   allocation and unmapped on free: every mapped buffer is zero-filled page by page again,
//   several GB per 3,072-wide layer, and took a fifth of the closed form's time in the
//   kernel (a ViT-B/16 closed form 57.5 s with a 1 MB threshold against 51.6 s). glibc
//   2.36 takes it; on versions that refuse a threshold over 32 MB, every buffer over 128 kB
//   stays mapped, as with the earlier 1 MB threshold (3.1 GB, slower). A 32 MB threshold
//   itself peaked at 4.5 GB.
// - Free memory over 256 MB at the top of the heap goes back to the system.
const MALLOC = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_MMAP_THRESHOLD_: String(128 << 20),
  MALLOC_TRIM_THRESHOLD_: String(256 << 20),
};
const unset = Object.entries(MALLOC).filter(([k]) => process.env[k] === undefined);
if (process.platform === 'linux' && unset.length > 0) {
  await new Promise(() => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, ...Object.fromEntries(unset) },
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
