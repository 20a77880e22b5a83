// A training run that SIGKILLs itself at a named checkpoint-write boundary (its n-th
// occurrence), for run.test.ts: nothing unwinds, as with a real kill.
// Usage: node --import tsx kill-child.ts <out folder> <boundary> <occurrence>
import { trainSupervised } from '../../src/train/loop.js';
import { KILL_CONFIG, killData, killModel } from './helpers.js';

const [out, boundary, nth] = process.argv.slice(2) as [string, string, string];
let seen = 0;
await trainSupervised({
  def: killModel(),
  train: killData(),
  config: KILL_CONFIG,
  outDir: out,
  checkpointEvery: 2,
  writeHook: (b) => {
    if (b === boundary && ++seen === Number(nth)) process.kill(process.pid, 'SIGKILL');
  },
});
// Reaching here means the boundary never came: the parent test fails on exit code 0.
