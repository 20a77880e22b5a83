// Runs the CLI in this process (the binary's code path without a child's start-up cost),
// capturing what it writes and its exit code.
import { main } from '../../src/cli/index.js';

/** Runs `denoiserep ...args` here; paths must be absolute. */
export async function runHere(
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const [outW, errW] = [
    process.stdout.write.bind(process.stdout),
    process.stderr.write.bind(process.stderr),
  ];
  // The exit code the test runner may already have set (a failed test) survives this call.
  const exitCode = process.exitCode;
  let out = '';
  let err = '';
  // The CLI writes strings; the test runner's own reports to this process's stdout are
  // binary, and must pass through untouched.
  const tap =
    (stream: NodeJS.WriteStream, orig: typeof outW, sink: (s: string) => void) =>
    (c: string | Uint8Array, ...rest: unknown[]): boolean => {
      if (typeof c === 'string') {
        sink(c);
        return true;
      }
      return (orig as (...a: unknown[]) => boolean).call(stream, c, ...rest);
    };
  process.stdout.write = tap(process.stdout, outW, (c) => (out += c));
  process.stderr.write = tap(process.stderr, errW, (c) => (err += c));
  try {
    process.exitCode = 0;
    await main(['node', 'denoiserep', ...args]);
    return { code: Number(process.exitCode ?? 0), out, err };
  } finally {
    process.stdout.write = outW;
    process.stderr.write = errW;
    process.exitCode = exitCode;
  }
}

/** The last line of the output, parsed as JSON. */
export function lastJson<T>(out: string): T {
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
}
