import { availableParallelism } from 'node:os';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DataError, UsageError } from '../util/errors.js';

/** Options every command accepts. */
export interface CommonOptions {
  json: boolean;
  seed: number;
  threads: number;
}

/** Adds --json, --seed and --threads to a command. */
export function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON object instead of text', false)
    .option('--seed <n>', 'seed of every random draw', parseIntArg('--seed'), 0)
    .addOption(
      new Option('--threads <n>', 'ONNX Runtime intra-op threads')
        .argParser(parseIntArg('--threads', 1))
        .default(availableParallelism(), 'every core'),
    );
}

/** A commander parser for integers with a lower bound, naming the flag on error. */
export function parseIntArg(flag: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${flag} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
}

/** A commander parser for finite numbers, naming the flag on error. */
export function parseFloatArg(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number, got '${v}'`);
    return n;
  };
}

/** A commander parser for comma-separated numbers (`--mean 0.5,0.5,0.5`). */
export function parseListArg(flag: string) {
  return (v: string): number[] => {
    const xs = v.split(',').map((s) => Number(s.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) {
      throw new InvalidArgumentError(`${flag} must be comma-separated numbers, got '${v}'`);
    }
    return xs;
  };
}

/** Parses `i/n` shard notation. */
export function parseShard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--shard must look like i/n (e.g. 0/4), got '${v}'`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new UsageError(`--shard ${v}: need 0 <= i < n`);
  return { index, count };
}

/** Prints a result as JSON or as readable text. */
export function emit(json: boolean, obj: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text()}\n`);
}

/**
 * Ends a command with exit code 2 when any fused model failed its verification, after
 * its report has been printed: a failed check is bad data, never a success.
 * @param checks - one entry per verified model, with a name for the message
 */
export function assertVerified(checks: { name: string; ok: boolean }[]): void {
  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  if (failed.length)
    throw new DataError(`verification failed: ${failed.join(', ')} (see the report above)`);
}
