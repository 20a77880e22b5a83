import { Command, CommanderError } from 'commander';
import { DenoiseRepError, exitCodeFor } from '../util/errors.js';
import { convertCommand } from './convert.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { finetuneCommand } from './finetune.js';
import { fitCommand } from './fit.js';
import { fuseCommand } from './fuse.js';
import { inspectCommand } from './inspect.js';
import { pretrainCommand } from './pretrain.js';
import { verifyCommand } from './verify.js';

/** Builds the `denoiserep` command line. */
export function buildProgram(): Command {
  const program = new Command('denoiserep')
    .description(
      'DenoiseRep for ONNX vision models: denoisers fused into the weights, at no inference cost',
    )
    .version('0.1.0')
    .showHelpAfterError()
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
  return program;
}

/**
 * Runs the CLI. Errors print one line (no stack trace) and set the exit code:
 * 1 for bad usage, 2 for bad data or model.
 */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (help, version, or a usage error).
      process.exitCode = err.exitCode === 0 ? 0 : 1;
      return;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(
      `denoiserep: ${err instanceof DenoiseRepError ? '' : 'internal error: '}${msg}\n`,
    );
    if (!(err instanceof DenoiseRepError) && process.env.DENOISEREP_DEBUG && err instanceof Error) {
      process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = exitCodeFor(err);
  }
}

// Run when executed directly (node --import tsx src/cli/index.ts ...).
if (import.meta.url === `file://${process.argv[1]}`) await main(process.argv);
