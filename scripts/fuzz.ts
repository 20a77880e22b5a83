/**
 * Deterministic fuzzing of the model-reading path (`denoiserep inspect`, in process):
 * read → validate → shape inference (ONNX Runtime measuring what the rules cannot) →
 * FLOP count → layer selection (planConversion).
 *
 *     npm run fuzz -- --n 10000 [--seed 1] [--timeout 30] [--rss-mb 2048] [--json]
 *
 * Case i mutates one committed fixture (test/fixtures/torch/*.onnx, test/fixtures/onnx/,
 * external-data models included) with the Rng forked from (seed, i): see
 * scripts/fuzz-mutations.ts. Cases run one after another in a child process that the
 * parent watches: a case that kills the process (a V8 abort, a native crash) is a
 * `crash`, one whose resident memory passes the limit a `memory` case, one that runs past
 * the timeout a `timeout`; the child is then replaced and the next case goes on. Every
 * other case ends `ok` or with an error, `typed` (one of the tool's DenoiseRepError
 * classes, which the CLI prints as one line) or `untyped` (anything else: a bug).
 * Exits 1 when any case is untyped, crash, memory or timeout.
 */
import { fork, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { planConversion } from '../src/denoise/plan.js';
import { countFlops } from '../src/eval/flops.js';
import { decodeModel } from '../src/onnx/serialize.js';
import { measureShapes } from '../src/runtime/measure-shapes.js';
import onnxProto from 'onnx-proto';
import { DenoiseRepError } from '../src/util/errors.js';
import { Rng } from '../src/util/rng.js';
import { type FuzzInput, mutate, type SideFile } from './fuzz-mutations.js';

const { onnx } = onnxProto;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** How a case ended. */
type Outcome = 'ok' | 'typed' | 'untyped' | 'crash' | 'memory' | 'timeout';
const OUTCOMES: Outcome[] = ['ok', 'typed', 'untyped', 'crash', 'memory', 'timeout'];

/** A committed model and the files beside it. */
interface Fixture {
  name: string;
  bytes: Uint8Array;
  files: Map<string, SideFile>;
}

/** The external-data locations a model file names (its side files). */
function locationsOf(bytes: Uint8Array): Set<string> {
  const out = new Set<string>();
  for (const t of onnx.ModelProto.decode(bytes).graph?.initializer ?? []) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const loc = t.externalData?.find((e) => e.key === 'location')?.value;
    if (loc) out.add(loc);
  }
  return out;
}

/** The corpus: every .onnx under the fixture folders, with its external-data files. */
function loadFixtures(): Fixture[] {
  const out: Fixture[] = [];
  const visit = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.name.endsWith('.onnx')) {
        const bytes = readFileSync(p);
        const files = new Map<string, SideFile>();
        for (const loc of locationsOf(bytes))
          files.set(loc, { kind: 'file', bytes: readFileSync(join(dir, loc)) });
        out.push({ name: p.slice(repo.length + 1), bytes, files });
      }
    }
  };
  visit(join(repo, 'test', 'fixtures'));
  return out;
}

/** The case's input: a fixture picked and mutated by the Rng of (seed, i). */
export function makeCase(
  fixtures: Fixture[],
  seed: number,
  i: number,
): FuzzInput & { fixture: string } {
  const rng = new Rng(seed).fork(i);
  const f = fixtures[rng.int(fixtures.length)]!;
  return { ...mutate(rng, f), fixture: f.name };
}

/** Writes the side files of a case into a fresh folder (FIFOs with mkfifo). */
function materialise(dir: string, files: Map<string, SideFile>): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, f] of files) {
    const p = join(dir, name);
    if (f.kind === 'file') writeFileSync(p, f.bytes);
    else if (f.kind === 'dir') mkdirSync(p);
    else if (f.kind === 'link') symlinkSync(f.target, p);
    else if (spawnSync('mkfifo', [p]).status !== 0) writeFileSync(p, ''); // no mkfifo: a file
  }
}

/** The steps of the inspect path, in order; a case's error is counted at its step. */
const STAGES = ['read', 'measure', 'flops', 'plan'] as const;
type Stage = (typeof STAGES)[number];

/** The inspect path, in process; `at` tracks the step being run. */
async function inspectPath(bytes: Uint8Array, dir: string, at: { stage: Stage }): Promise<void> {
  at.stage = 'read'; // decode, validate (names, producers, cycles, opsets, bounds)
  const read = decodeModel(bytes, { source: 'case.onnx', baseDir: dir });
  at.stage = 'measure'; // shape inference, ONNX Runtime for what the rules cannot type
  const { model } = await measureShapes(read, { source: 'case.onnx' });
  at.stage = 'flops'; // shape inference again, with per-node FLOPs
  countFlops(model);
  at.stage = 'plan'; // layer selection
  planConversion(model.graph, { source: 'case.onnx' });
}

/** Messages from the child to the parent. */
type ChildMessage =
  | { type: 'start'; i: number }
  | {
      type: 'done';
      i: number;
      outcome: Outcome;
      stage?: Stage;
      message?: string;
      steps: string[];
      fixture: string;
    };

function child(): void {
  const fixtures = loadFixtures();
  const work = mkdtempSync(join(tmpdir(), 'denoiserep-fuzz-'));
  const send = (m: ChildMessage) => new Promise<void>((ok) => process.send!(m, () => ok()));
  const handle = async (msg: { seed: number; from: number; to: number }) => {
    for (let i = msg.from; i < msg.to; i++) {
      // Started before the case is made, so a mutation that hangs is caught too.
      await send({ type: 'start', i });
      let c: ReturnType<typeof makeCase>;
      const dir = join(work, 'case');
      let outcome: Outcome = 'ok';
      let message: string | undefined;
      try {
        c = makeCase(fixtures, msg.seed, i);
      } catch (err) {
        // A harness bug, not a finding; counted as untyped so that it gets fixed.
        await send({
          type: 'done',
          i,
          outcome: 'untyped',
          message: `making the case failed: ${String(err)}`,
          steps: [],
          fixture: '?',
        });
        continue;
      }
      const at: { stage: Stage } = { stage: 'read' };
      try {
        materialise(dir, c.files);
        await inspectPath(c.bytes, dir, at);
      } catch (err) {
        outcome = err instanceof DenoiseRepError ? 'typed' : 'untyped';
        message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        if (outcome === 'untyped' && err instanceof Error && err.stack)
          message += `\n${err.stack.split('\n').slice(1, 6).join('\n')}`;
      }
      const stage = outcome === 'ok' ? undefined : at.stage;
      await send({ type: 'done', i, outcome, stage, message, steps: c.steps, fixture: c.fixture });
    }
    rmSync(work, { recursive: true, force: true });
    process.exit(0);
  };
  process.on('message', (msg: { seed: number; from: number; to: number }) => void handle(msg));
}

/** Resident set size of a process in bytes (Linux /proc), or 0 when unknown. */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface Summary {
  n: number;
  seed: number;
  seconds: number;
  counts: Record<Outcome, number>;
  /** Typed errors by the step of the inspect path that raised them. */
  typedAt: Record<Stage, number>;
  /** Up to 5 cases of each bad outcome, and the first 3 typed messages, to look at. */
  examples: { i: number; outcome: Outcome; fixture: string; steps: string[]; message?: string }[];
}

async function parent(opts: {
  from: number;
  n: number;
  seed: number;
  timeoutS: number;
  rssMb: number;
}): Promise<Summary> {
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const typedAt = Object.fromEntries(STAGES.map((st) => [st, 0])) as Record<Stage, number>;
  const examples: Summary['examples'] = [];
  const t0 = performance.now();
  let next = opts.from;
  const end = opts.from + opts.n;
  while (next < end) {
    // One child runs cases from `next` on until it finishes or has to be replaced.
    next = await new Promise<number>((done) => {
      const proc = fork(fileURLToPath(import.meta.url), ['--child'], {
        execArgv: ['--import', 'tsx', '--max-old-space-size=4096'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      let current = -1;
      let reported = next;
      let finished = false;
      let timer: NodeJS.Timeout | undefined;
      let started = 0;
      let stderr = '';
      proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      const record = (
        i: number,
        outcome: Outcome,
        fixture: string,
        steps: string[],
        message?: string,
      ) => {
        counts[outcome]++;
        const bad = outcome !== 'ok' && outcome !== 'typed';
        const same = examples.filter((e) => e.outcome === outcome).length;
        if ((bad && same < 5) || (outcome === 'typed' && same < 3))
          examples.push({ i, outcome, fixture, steps, message });
      };
      const kill = (outcome: Outcome, why: string) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearInterval(watch);
        proc.kill('SIGKILL');
        let c = { fixture: '?', steps: ['(the case could not be made again)'] };
        try {
          c = makeCase(fixtures, opts.seed, current);
        } catch {
          // The case's own generation was what failed.
        }
        record(current, outcome, c.fixture, c.steps, why);
        done(current + 1);
      };
      const watch = setInterval(() => {
        const rss = rssOf(proc.pid!);
        if (current >= 0 && rss > opts.rssMb * 2 ** 20)
          kill('memory', `resident memory ${(rss / 2 ** 20).toFixed(0)} MB`);
      }, 50);
      proc.on('message', (m: ChildMessage) => {
        if (m.type === 'start') {
          current = m.i;
          started = performance.now();
          clearTimeout(timer);
          timer = setTimeout(
            () => kill('timeout', `over ${opts.timeoutS} s`),
            opts.timeoutS * 1000,
          );
        } else {
          clearTimeout(timer);
          record(m.i, m.outcome, m.fixture, m.steps, m.message);
          if (m.outcome === 'typed' && m.stage) typedAt[m.stage]++;
          if (values.verbose)
            process.stderr.write(
              `${m.i} ${m.outcome} ${(performance.now() - started).toFixed(0)} ms ${m.steps.join('; ')}: ${m.message ?? ''}\n`,
            );
          reported = m.i + 1;
          current = -1;
          if (reported % 1000 === 0 && !json)
            process.stderr.write(
              `  ${reported} cases, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
            );
        }
      });
      proc.on('exit', (code, signal) => {
        clearInterval(watch);
        if (finished) return;
        if (current >= 0) {
          kill('crash', `process died (${signal ?? `exit ${code}`}): ${stderr.slice(-400)}`);
          return;
        }
        finished = true;
        if (reported === next && code !== 0) {
          // Died before starting any case: not a case's fault, and retrying would loop.
          console.error(
            `fuzz: the case runner failed to start (${signal ?? `exit ${code}`}): ${stderr}`,
          );
          process.exit(2);
        }
        done(reported);
      });
      proc.send({ seed: opts.seed, from: next, to: end });
    });
  }
  return {
    n: opts.n,
    seed: opts.seed,
    seconds: (performance.now() - t0) / 1000,
    counts,
    typedAt,
    examples,
  };
}

const fixtures = loadFixtures();
const { values } = parseArgs({
  options: {
    child: { type: 'boolean', default: false },
    n: { type: 'string', default: '1000' },
    from: { type: 'string', default: '0' },
    verbose: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '30' },
    'rss-mb': { type: 'string', default: '2048' },
    json: { type: 'boolean', default: false },
  },
});
const json = values.json;

if (values.child) {
  child();
} else {
  const num = (flag: string, v: string, min: number) => {
    const x = Number(v);
    if (!Number.isSafeInteger(x) || x < min) {
      console.error(`--${flag} must be an integer >= ${min}, got '${v}'`);
      process.exit(1);
    }
    return x;
  };
  const s = await parent({
    from: num('from', values.from, 0),
    n: num('n', values.n, 1),
    seed: num('seed', values.seed, 0),
    timeoutS: num('timeout', values.timeout, 1),
    rssMb: num('rss-mb', values['rss-mb'], 64),
  });
  if (json) console.log(JSON.stringify(s));
  else {
    console.log(
      `fuzz: ${s.n} cases from ${fixtures.length} fixtures, seed ${s.seed}, ${s.seconds.toFixed(1)} s`,
    );
    for (const o of OUTCOMES) console.log(`  ${o.padEnd(8)} ${s.counts[o]}`);
    console.log(
      `  typed errors by step: ${STAGES.map((st) => `${st} ${s.typedAt[st]}`).join(', ')}`,
    );
    for (const e of s.examples)
      console.log(
        `\n[${e.outcome}] case ${e.i} (${e.fixture}; ${e.steps.join('; ')})\n  ${e.message ?? ''}`,
      );
  }
  const bad = s.counts.untyped + s.counts.crash + s.counts.memory + s.counts.timeout;
  process.exit(bad > 0 ? 1 : 0);
}
