// Every numeric flag of every command has a range (src/util/ranges.ts), checked while the
// command line is parsed: a value outside it is a one-line UsageError (exit code 1) naming
// the flag, and the command's action never starts. Parsed in process, with each command's
// action replaced by a recorder, so that hundreds of cases take well under a second and a
// value wrongly accepted does no work; errors.e2e.test.ts spawns the real binary.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { optionRange } from '../../src/cli/common.js';
import { buildProgram, describeError, EXIT } from '../../src/cli/index.js';
import { UsageError } from '../../src/util/errors.js';
import {
  checkRange,
  inRange,
  intervalText,
  MAX_THREADS,
  type Range,
  RANGES,
} from '../../src/util/ranges.js';

// The arguments each command needs to get past parsing, so that one bad flag is the only
// fault. No file is read: the actions are replaced before parsing.
const valid: Record<string, string[]> = {
  demo: ['--quick'],
  pretrain: ['--model', 'mlp-fmnist', '--out', 'pt'],
  eval: ['m.onnx'],
  inspect: ['m.onnx'],
  convert: ['m.onnx', '--out', 'd.safetensors'],
  fit: ['m.onnx', '--data', 'embedded', '--out', 'f.onnx'],
  finetune: ['ckpt', '--out', 'ft'],
  fuse: ['m.onnx', '--denoisers', 'd.safetensors', '--out', 'f.onnx'],
  verify: ['m.onnx', '--fused', 'f.onnx', '--denoisers', 'd.safetensors'],
  'export-weights': ['m.onnx', '--out', 'w.safetensors'],
  study: ['--quick'],
  sample: ['m.onnx', '--out', 'g.png'],
  probe: ['pixels'],
};

interface Parsed {
  /** The command whose action ran, if any. */
  ran?: string;
  /** Its parsed options. */
  opts?: Record<string, unknown>;
  /** What parsing threw. */
  error?: unknown;
}

/**
 * Parses one command line with every action replaced by a recorder.
 * @param real - keep the real action of this command (for checks made inside actions)
 */
async function parse(args: string[], real?: string): Promise<Parsed> {
  const program = buildProgram();
  const out: Parsed = {};
  for (const c of program.commands) {
    if (c.name() === real) continue;
    c.action((...a: unknown[]) => {
      out.ran = c.name();
      out.opts = (a.at(-1) as Command).opts();
    });
  }
  try {
    await program.parseAsync(['node', 'denoiserep', ...args]);
  } catch (e) {
    out.error = e;
  }
  return out;
}

/** Asserts a UsageError whose one line names the flag, with exit code 1, and no action run. */
function assertRefused(r: Parsed, flag: string, what: string, pattern?: RegExp): void {
  assert.equal(r.ran, undefined, `${what}: the action ran`);
  assert.ok(r.error instanceof UsageError, `${what}: threw ${String(r.error)}`);
  const { line, code } = describeError(r.error);
  assert.equal(code, EXIT.usage, what);
  assert.ok(!line.includes('\n'), `${what}: more than one line`);
  assert.ok(line.startsWith(`denoiserep: ${flag} `), `${what}: ${line}`);
  if (pattern) assert.match(line, pattern, what);
}

/** Values just outside a range, and values no range accepts. */
function outside(r: Range): string[] {
  const xs = ['NaN', 'Infinity', '-Infinity', '1e400', 'twelve', ''];
  if (r.min !== undefined)
    xs.push(String(r.min - (r.int ? 1 : Math.max(1e-9, Math.abs(r.min) * 1e-9))));
  if (r.minExclusive !== undefined) xs.push(String(r.minExclusive));
  if (r.max !== undefined)
    xs.push(r.max >= Number.MAX_SAFE_INTEGER ? '1e30' : String(r.max + (r.int ? 1 : r.max * 1e-9)));
  if (r.maxExclusive !== undefined) xs.push(String(r.maxExclusive));
  if (r.int) xs.push(String((r.min ?? 0) + 0.5));
  return xs;
}

/** Values at the edges of a range, all accepted. */
function inside(r: Range): number[] {
  const lo = r.min ?? (r.minExclusive !== undefined ? r.minExclusive + 1e-6 : -1);
  const hi = r.max ?? (r.maxExclusive !== undefined ? r.maxExclusive - 1e-6 : 1);
  return [lo, hi];
}

/** Every option of every command that has a range, with the command's name. */
function rangedOptions(): { cmd: string; flag: string; range: Range }[] {
  return buildProgram().commands.flatMap((c) =>
    c.options
      .map((o) => ({ cmd: c.name(), flag: o.long!, range: optionRange(o) }))
      .filter((o): o is { cmd: string; flag: string; range: Range } => o.range !== undefined),
  );
}

describe('numeric flags: every one has a range', () => {
  test('every option taking a number (<n>, <x>, <p>, lists of numbers) declares a range', () => {
    const program = buildProgram();
    assert.deepEqual(program.commands.map((c) => c.name()).sort(), Object.keys(valid).sort());
    const numeric = /<(n|x|p|h,w|m|s)>$/;
    let count = 0;
    for (const c of program.commands)
      for (const o of c.options) {
        if (!numeric.test(o.flags)) continue;
        count++;
        const r = optionRange(o);
        assert.ok(r, `${c.name()} ${o.flags} has no range`);
        // One flag, one range: the command line and the one-call functions share the table.
        assert.deepEqual(r, RANGES[o.long as keyof typeof RANGES], `${c.name()} ${o.long}`);
      }
    // seed and threads in each command, and the commands' own numeric flags.
    assert.ok(count >= Object.keys(valid).length * 2 + 30, `only ${count} numeric options found`);
  });

  test('--help prints each range next to the default', () => {
    const program = buildProgram();
    program.configureOutput({ writeOut: () => {} });
    const help = program.commands.find((c) => c.name() === 'pretrain')!.helpInformation();
    const text = help.replace(/\n {20,}/g, ' ');
    assert.match(
      text,
      /--label-smoothing <x> +label smoothing \(number in \[0, 1\); default: 0\.1\)/,
    );
    assert.match(text, /--epochs <n> +epochs \(integer in \[1, 10000\]; default: 10\)/);
    assert.match(text, /--seed <n> .*\(integer in \[0, 2\^53-1\]; default: 0\)/);
  });

  test('threads: 1 to four per core', () => {
    assert.equal(MAX_THREADS, availableParallelism() * 4);
    assert.deepEqual(RANGES['--threads'], { int: true, min: 1, max: MAX_THREADS });
  });
});

describe('numeric flags: out of range is a one-line UsageError naming the flag, exit 1', () => {
  test('the values the hardening probe found accepted', async () => {
    const cases: [string[], string, RegExp][] = [
      [['fit', ...valid.fit!, '--threads', '100000'], '--threads', /in \[1, \d+\], got '100000'$/],
      [['fit', ...valid.fit!, '--batch-size', '1e9'], '--batch-size', /\[1, 65536\], got '1e9'$/],
      [['pretrain', ...valid.pretrain!, '--seed', '1e30'], '--seed', /\[0, 2\^53-1\], got '1e30'/],
      [['pretrain', ...valid.pretrain!, '--label-smoothing', '5'], '--label-smoothing', /\[0, 1\)/],
      [['pretrain', ...valid.pretrain!, '--epochs', '1e12'], '--epochs', /\[1, 10000\]/],
    ];
    for (const [args, flag, pattern] of cases)
      assertRefused(await parse(args), flag, args.join(' '), pattern);
  });

  test('every ranged flag of every command, below, above, non-integer and non-finite', async () => {
    const options = rangedOptions();
    let cases = 0;
    for (const { cmd, flag, range } of options) {
      for (const v of outside(range)) {
        assert.equal(inRange(Number(v), range) && v.trim() !== '', false, `${flag} ${v}`);
        const what = `${cmd} ${flag} '${v}'`;
        assertRefused(await parse([cmd, ...valid[cmd]!, flag, v]), flag, what);
        cases++;
      }
    }
    assert.ok(cases > 300, `${cases} cases`);
  });

  test('the edges of every range are accepted, and parsed as numbers', async () => {
    for (const { cmd, flag, range } of rangedOptions()) {
      for (const v of inside(range)) {
        const r = await parse([cmd, ...valid[cmd]!, flag, String(v)]);
        assert.equal(r.error, undefined, `${cmd} ${flag} ${v}: ${String(r.error)}`);
        assert.equal(r.ran, cmd);
        const key = flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        const got = r.opts![key];
        assert.deepEqual(Array.isArray(got) ? got : [got], [v], `${cmd} ${flag}`);
      }
    }
  });

  test('lists: too many values, or one bad value among good ones', async () => {
    const fit = ['fit', ...valid.fit!];
    assertRefused(await parse([...fit, '--size', '28,28,28']), '--size', 'size', /at most 2/);
    assertRefused(await parse([...fit, '--std', '0.5,0,0.5']), '--std', 'std', /got '0'$/);
    assertRefused(await parse([...fit, '--mean', '0.5,,0.5']), '--mean', 'mean', /got ''$/);
    const ok = await parse([...fit, '--size', '32,48', '--mean', '0.5,0.4,0.3']);
    assert.deepEqual(
      [ok.opts!.size, ok.opts!.mean],
      [
        [32, 48],
        [0.5, 0.4, 0.3],
      ],
    );
  });

  test('flags that must agree with each other are checked before any work', async () => {
    const pt = ['pretrain', ...valid.pretrain!];
    assertRefused(
      await parse([...pt, '--epochs', '2', '--warmup-epochs', '3'], 'pretrain'),
      '--warmup-epochs',
      'warm-up longer than training',
      /exceeds --epochs 2/,
    );
    assertRefused(
      await parse([...pt, '--lr', '0.001', '--min-lr', '0.01'], 'pretrain'),
      '--min-lr',
      'final learning rate above the peak',
      /exceeds --lr 0\.001/,
    );
    // A diffusion preset: its own defaults (min-lr 1e-5) count against the flags given.
    // (A missing --data folder: were the check gone, the action would fail fast, not train.)
    const ddpm = ['pretrain', '--model', 'ddpm-unet-fmnist', '--out', 'pt', '--data', 'none'];
    assertRefused(
      await parse([...ddpm, '--lr', '1e-6'], 'pretrain'),
      '--min-lr',
      'the DDPM default final rate above a small peak',
      /--min-lr 0\.00001 exceeds --lr 0\.000001/,
    );
    assertRefused(
      await parse([...ddpm, '--epochs', '1', '--warmup-epochs', '2'], 'pretrain'),
      '--warmup-epochs',
      'DDPM warm-up longer than training',
      /exceeds --epochs 1/,
    );
    assertRefused(
      await parse(
        ['convert', ...valid.convert!, '--beta-start', '0.5', '--beta-end', '0.1'],
        'convert',
      ),
      '--beta-start',
      'decreasing betas',
      /smaller than --beta-end 0\.1/,
    );
    assertRefused(
      await parse(['demo', '--from-scratch', '--backbone', 'zoo:resnet-tiny-fmnist'], 'demo'),
      '--from-scratch',
      'a backbone to start from and none',
      /cannot be given with --backbone/,
    );
  });
});

describe('the shared range table', () => {
  test('checkRange: the message names the flag, the interval and the value', () => {
    assert.equal(checkRange('--lr', '0.5'), 0.5);
    assert.equal(checkRange('--lr', 1e6), 1e6);
    assert.throws(
      () => checkRange('--lr', 0),
      (e: unknown) =>
        e instanceof UsageError && e.message === "--lr must be a number in (0, 1000000], got '0'",
    );
    assert.throws(() => checkRange('--lr', '1000000.1'), UsageError);
    assert.throws(() => checkRange('--epochs', true), UsageError);
    assert.throws(() => checkRange('--unknown-flag', 1), /no range is declared for --unknown-flag/);
  });

  test('interval notation by hand', () => {
    assert.equal(intervalText({ min: 0, maxExclusive: 1 }), '[0, 1)');
    assert.equal(intervalText({ minExclusive: 0, max: 10 }), '(0, 10]');
    assert.equal(intervalText({ min: 0, max: Number.MAX_SAFE_INTEGER }), '[0, 2^53-1]');
    assert.equal(intervalText({}), '(-inf, inf)');
    assert.equal(inRange(1, { min: 0, maxExclusive: 1 }), false);
    assert.equal(inRange(0.999, { min: 0, maxExclusive: 1 }), true);
    assert.equal(inRange(2.5, { int: true, min: 1, max: 3 }), false);
  });
});
