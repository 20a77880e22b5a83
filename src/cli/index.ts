import { readFileSync } from 'node:fs';
import { Command, CommanderError, type Option } from 'commander';
import { DenoiseRepError, exitCodeFor } from '../util/errors.js';
import { rangeText } from '../util/ranges.js';
import { optionRange } from './common.js';
import { convertCommand } from './convert.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { exportWeightsCommand } from './export-weights.js';
import { finetuneCommand } from './finetune.js';
import { fitCommand } from './fit.js';
import { fuseCommand } from './fuse.js';
import { inspectCommand } from './inspect.js';
import { pretrainCommand } from './pretrain.js';
import { probeCommand } from './probe.js';
import { sampleCommand } from './sample.js';
import { studyCommand } from './study.js';
import { verifyCommand } from './verify.js';

/** Exit codes of the `denoiserep` command, as the README lists them. */
export const EXIT = { ok: 0, usage: 1, data: 2, internal: 3 } as const;

/**
 * Node's error codes for a path that cannot be found or read: the user's file is at fault
 * (exit 2), not the tool.
 */
const FILE_ERRORS = new Set([
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EACCES',
  'EPERM',
  'ELOOP',
  'ENAMETOOLONG',
]);

/** The package version, read from package.json (two levels up from src/cli and dist/cli). */
function packageVersion(): string {
  const url = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** A message on one line: runs of whitespace around line breaks become one space. */
export function oneLine(msg: string): string {
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * An option's help text: the description, then the default where it tells the user
 * something. Commander would also print `(default: false)` after every switch, and a
 * second default after descriptions that already state theirs ("every core"). A numeric
 * option's accepted range comes first: `(integer in [1, 65536]; default: 32)`.
 */
function optionDescription(option: Option): string {
  const extra: string[] = [];
  if (option.argChoices) extra.push(`one of ${option.argChoices.join(', ')}`);
  const range = optionRange(option);
  if (range) extra.push(rangeText(range));
  const v: unknown = option.defaultValue;
  if (v !== undefined && v !== false && !/\bdefault\b/.test(option.description)) {
    extra.push(
      `default: ${option.defaultValueDescription ?? (typeof v === 'string' ? v : JSON.stringify(v))}`,
    );
  }
  return extra.length ? `${option.description} (${extra.join('; ')})` : option.description;
}

/**
 * Builds the `denoiserep` command line. Parsing errors are one line on stderr (no help
 * after them: `--help` shows it), and throw a CommanderError instead of exiting, so that
 * `main` sets the exit code. Subcommands inherit these settings, so they are set before
 * any command is added.
 */
export function buildProgram(): Command {
  const program = new Command('denoiserep')
    .description(
      'DenoiseRep for ONNX vision models: denoisers fused into the weights, at no inference cost',
    )
    .version(packageVersion())
    .showHelpAfterError(false)
    .configureHelp({ optionDescription })
    .configureOutput({
      // Commander's message reads "error: unknown option '--x'\n(Did you mean --y?)\n".
      outputError: (str, write) => write(`denoiserep: ${oneLine(str.replace(/^error: /, ''))}\n`),
    })
    .exitOverride();
  demoCommand(program);
  pretrainCommand(program);
  evalCommand(program);
  inspectCommand(program);
  convertCommand(program);
  fitCommand(program);
  finetuneCommand(program);
  fuseCommand(program);
  verifyCommand(program);
  exportWeightsCommand(program);
  studyCommand(program);
  sampleCommand(program);
  probeCommand(program);
  return program;
}

/**
 * The one line and exit code for an error that ended a command: 1 for bad usage, 2 for
 * bad data or model (a file that is missing or cannot be read included), 3 for an
 * internal error.
 */
export function describeError(err: unknown): { line: string; code: number } {
  const msg = oneLine(err instanceof Error ? err.message : String(err));
  if (err instanceof DenoiseRepError) return { line: `denoiserep: ${msg}`, code: exitCodeFor(err) };
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys?.code === 'string' && FILE_ERRORS.has(sys.code) && sys.path !== undefined)
    return { line: `denoiserep: ${msg}`, code: EXIT.data };
  return {
    line: `denoiserep: internal error: ${msg} (DENOISEREP_DEBUG=1 prints the stack)`,
    code: EXIT.internal,
  };
}

/**
 * Runs the CLI. Every error prints one line on stderr (no stack trace unless
 * DENOISEREP_DEBUG is set) and sets the exit code: 1 bad usage, 2 bad data or model or a
 * failed verification, 3 internal error.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (help, version, or the one-line usage error);
      // it exits 0 after --help and --version, 1 after a usage error or a missing command.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    const { line, code } = describeError(err);
    process.stderr.write(`${line}\n`);
    if (code === EXIT.internal && process.env.DENOISEREP_DEBUG && err instanceof Error)
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = code;
  }
}

// Run when executed directly (node --import tsx src/cli/index.ts ...).
if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv);
