// Checkpoints survive a kill at any write boundary: a run is killed at each boundary of its
// checkpoint writes and log appends (in-process, where nothing in the writer catches the
// simulated kill, and with real SIGKILLs of a child process), and the resumed run ends
// byte-identical to an uninterrupted one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type TrainResult, trainSupervised } from '../../src/train/loop.js';
import { KILL_CONFIG, killData, killModel } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'denoiserep-kill-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A simulated kill: thrown at a write boundary, caught by nothing in the writer. */
class Killed extends Error {}

const run = (out: string, extra: Partial<Parameters<typeof trainSupervised>[0]> = {}) =>
  trainSupervised({
    def: killModel(),
    train: killData(),
    config: KILL_CONFIG,
    outDir: out,
    checkpointEvery: 2,
    ...extra,
  });

/** The step lines of a run's log: step, loss and lr (timings differ between runs). */
function logSteps(out: string): [number, number, number][] {
  return readFileSync(join(out, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; step: number; loss: number; lr: number })
    .filter((l) => l.kind === 'step')
    .map((l) => [l.step, l.loss, l.lr]);
}

/** Asserts that a resumed run ended exactly where the uninterrupted one did. */
function assertSameEnd(
  res: TrainResult,
  ref: TrainResult,
  out: string,
  refOut: string,
  at: string,
) {
  for (const n of ref.store.names()) {
    assert.deepEqual(
      new Uint32Array(res.store.get(n).data.buffer),
      new Uint32Array(ref.store.get(n).data.buffer),
      `${at}: ${n}`,
    );
  }
  assert.deepEqual(res.compute, ref.compute, at);
  assert.deepEqual(logSteps(out), logSteps(refOut), at);
  // The final checkpoint's tensors (weights and Adam moments) are the same bytes, and
  // nothing of the interrupted write is left behind.
  for (const f of ['weights.safetensors', 'optimizer.safetensors']) {
    assert.ok(
      readFileSync(join(out, 'checkpoint', f)).equals(readFileSync(join(refOut, 'checkpoint', f))),
      `${at}: ${f}`,
    );
  }
  assert.deepEqual(readdirSync(out).sort(), ['checkpoint', 'checkpoint-00000006', 'log.jsonl'], at);
}

describe('checkpoints survive a kill at any write boundary', () => {
  const boundaries: string[] = [];
  let ref: TrainResult;
  const refOut = join(root, 'ref');

  test('every boundary of the uninterrupted run, then a kill at each: same end', async () => {
    ref = await run(refOut, { writeHook: (b) => boundaries.push(b) });
    // 3 steps per epoch, a checkpoint every 2 steps and at epoch ends: steps 2, 3, 4, 6.
    assert.deepEqual(readdirSync(refOut).sort(), [
      'checkpoint',
      'checkpoint-00000006',
      'log.jsonl',
    ]);
    for (const b of [
      'begin',
      'created:tmp',
      'partial:weights.safetensors',
      'written:optimizer.safetensors',
      'partial:state.json',
      'renamed:folder',
      'created:link',
      'switched',
      'removed:previous',
      'log:step',
      'log:epoch',
    ])
      assert.ok(boundaries.includes(b), b);
    assert.equal(boundaries.filter((b) => b === 'switched').length, 4);
    for (let i = 0; i < boundaries.length; i++) {
      const out = join(root, `kill-${i}`);
      let count = 0;
      await assert.rejects(
        run(out, {
          writeHook: () => {
            if (count++ === i) throw new Killed(boundaries[i]);
          },
        }),
        Killed,
      );
      // The user runs the command again: with --resume once a checkpoint exists.
      const res = await run(out, { resume: existsSync(join(out, 'checkpoint')) });
      assertSameEnd(res, ref, out, refOut, `killed at ${i} (${boundaries[i]})`);
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('a real SIGKILL at three boundaries, then resume: same end', async () => {
    const child = join(dirname(fileURLToPath(import.meta.url)), 'kill-child.ts');
    const tsx = import.meta.resolve('tsx');
    for (const [boundary, nth] of [
      ['partial:optimizer.safetensors', 2],
      ['created:link', 3],
      ['log:step', 5],
    ] as const) {
      const out = join(root, `sigkill-${boundary}`);
      const r = spawnSync(process.execPath, ['--import', tsx, child, out, boundary, String(nth)], {
        encoding: 'utf8',
      });
      assert.equal(r.signal, 'SIGKILL', `${boundary}: ${r.stderr}`);
      const res = await run(out, { resume: true });
      assertSameEnd(res, ref, out, refOut, `SIGKILL at ${boundary} #${nth}`);
    }
  });
});
