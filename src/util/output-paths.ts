/**
 * The rule that no command writes over one of its inputs, or writes two outputs to one
 * file: every output path of a command is compared with every input path and with every
 * other output, before any work starts.
 *
 * Two paths name the same file when they resolve to the same real path (symbolic links
 * followed) or, for files that exist, when they share device and inode (hard links). A
 * path that does not exist yet is compared by its folder's real path plus its name.
 */
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

/** A path with the flag (or argument, e.g. `<model>`) that named it, for messages. */
export interface FlagPath {
  flag: string;
  path: string;
}

interface Identity {
  /** Real path (or, for a file not yet there, its folder's real path joined with its name). */
  real: string;
  /** `dev:ino` of an existing file. */
  inode?: string;
}

function identify(path: string): Identity {
  const abs = resolve(path);
  try {
    const st = statSync(abs);
    return { real: realpathSync(abs), inode: `${st.dev}:${st.ino}` };
  } catch {
    // Not there (or a dangling link): its folder decides where it would be written.
    try {
      return { real: join(realpathSync(dirname(abs)), basename(abs)) };
    } catch {
      return { real: abs };
    }
  }
}

function same(a: Identity, b: Identity): boolean {
  return a.real === b.real || (a.inode !== undefined && a.inode === b.inode);
}

/** An output's folder must exist, and the output must not be a folder itself. */
function checkWritable(o: FlagPath): void {
  if (o.path === '') throw new UsageError(`${o.flag} needs a file name`);
  const dir = dirname(resolve(o.path));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`${o.flag} ${o.path}: folder ${dirname(o.path)} does not exist`);
  let target: ReturnType<typeof statSync> | undefined;
  try {
    target = statSync(o.path);
  } catch {
    // a new file
  }
  if (target?.isDirectory())
    throw new UsageError(`${o.flag} ${o.path} is a folder; give a file name`);
}

/**
 * Checks a command's output paths against its input paths and against each other, and
 * that every output's folder exists. Call it before any work, so a clash costs nothing.
 * @param inputs - every file or folder the command reads, with the flag that named it
 * @param outputs - every file it will write (derived files too, e.g. a report's .svg)
 * @throws UsageError naming both flags when an output is an input or another output, or
 *   naming the flag whose folder is missing
 * @example
 * checkOutputPaths(
 *   [{ flag: '<model>', path: 'm.onnx' }],
 *   [{ flag: '--out', path: 'fused.onnx' }, { flag: '--denoisers-out', path: 'd.safetensors' }],
 * );
 */
export function checkOutputPaths(inputs: FlagPath[], outputs: FlagPath[]): void {
  for (const o of outputs) checkWritable(o);
  const ins = inputs.map((i) => ({ ...i, id: identify(i.path) }));
  const outs = outputs.map((o) => ({ ...o, id: identify(o.path) }));
  for (const [k, o] of outs.entries()) {
    const input = ins.find((i) => same(i.id, o.id));
    if (input)
      throw new UsageError(
        `${o.flag} ${o.path} is the same file as ${input.flag} ${input.path}; refusing to overwrite an input`,
      );
    const other = outs.slice(0, k).find((p) => same(p.id, o.id));
    if (other)
      throw new UsageError(
        `${other.flag} ${other.path} and ${o.flag} ${o.path} are the same file; give each output its own path`,
      );
  }
}
