import { availableParallelism } from 'node:os';
import { type Command, Option } from 'commander';
import { DataError, UsageError } from '../util/errors.js';
import { checkRange, type Range, rangeOf } from '../util/ranges.js';

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
    .option('--seed <n>', 'seed of every random draw', intArg('--seed'), 0)
    .addOption(
      new Option('--threads <n>', 'ONNX Runtime intra-op threads')
        .argParser(intArg('--threads'))
        .default(availableParallelism(), 'every core'),
    );
}

/** A commander parser that carries its range, so that --help can print it. */
export type RangedParser<T> = ((v: string) => T) & { range: Range };

/** The range a commander option's parser checks, if it is one of ours. */
export function optionRange(option: Option): Range | undefined {
  return (option.parseArg as Partial<RangedParser<unknown>> | undefined)?.range;
}

function ranged<T>(parse: (v: string) => T, range: Range): RangedParser<T> {
  return Object.assign(parse, { range });
}

/**
 * A commander parser for a number in a range, throwing a UsageError (exit 1) that names the
 * flag, its range and the value before any work is done. The range is the flag's entry in
 * src/util/ranges.ts unless given; --help prints it.
 * @example .option('--batch-size <n>', 'images per batch', intArg('--batch-size'), 32)
 */
export function floatArg(flag: string, range: Range = rangeOf(flag)): RangedParser<number> {
  return ranged((v: string) => checkRange(flag, v, range), range);
}

/** {@link floatArg} for integer ranges (the range must say `int: true`). */
export function intArg(flag: string, range: Range = rangeOf(flag)): RangedParser<number> {
  if (!range.int) throw new Error(`${flag}: intArg needs an integer range`);
  return floatArg(flag, range);
}

/**
 * A commander parser for comma-separated numbers (`--mean 0.5,0.5,0.5`), each in the
 * flag's range, with between 1 and `maxCount` of them.
 */
export function listArg(
  flag: string,
  maxCount: number,
  range: Range = rangeOf(flag),
): RangedParser<number[]> {
  return ranged((v: string) => {
    const parts = v.split(',');
    if (parts.length > maxCount)
      throw new UsageError(`${flag} takes at most ${maxCount} comma-separated values, got '${v}'`);
    return parts.map((s) => checkRange(flag, s.trim(), range));
  }, range);
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
