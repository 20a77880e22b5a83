#!/usr/bin/env node
// The `denoiserep` command: the compiled CLI in dist/ (npm ci and npm pack build it).
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
