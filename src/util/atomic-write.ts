import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';

let counter = 0;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether a process with this id runs now (one we may not signal still runs). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files that an earlier, killed writer of `path` left behind: names of
 * this module's pattern (`.NAME.PID.THREAD.N.tmp`) whose process no longer runs. A live
 * writer's file is left alone, so two processes writing one target never break each other.
 * @param path - the target about to be written
 * @returns the names removed
 */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  const pattern = new RegExp(`^\\.${escapeRegExp(basename(path))}\\.(\\d+)\\.\\d+\\.\\d+\\.tmp$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // the write itself reports a missing folder
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Writes a file so that readers see either the old contents or the new, never a partial
 * file: the data goes to a temporary file in the same folder (so that the rename stays
 * on one file system), is flushed to disk, then renamed over the target. On failure the
 * temporary file is removed, the target is untouched and the error is rethrown. Temporary
 * files of the same target left by a writer that was killed are removed first
 * ({@link removeStaleTemps}).
 * @param path - target file; its folder must exist
 * @param data - contents (a string is written as UTF-8)
 * @example
 * writeFileAtomic('runs/a/table.md', '| a | b |\n');
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  removeStaleTemps(path);
  // pid + thread + counter: unique among every writer that could share this folder now.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${threadId}.${counter++}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    // 'wx': never reuse (or later delete) a file this call did not create.
    fd = openSync(tmp, 'wx');
    created = true;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // The original error is the one worth reporting.
      }
    }
    if (created) rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes JSON (pretty-printed, trailing newline) atomically; see {@link writeFileAtomic}.
 * @param path - target file
 * @param obj - any JSON-serialisable value
 * @example
 * writeJsonAtomic('runs/a/results.json', { acc: 0.91 });
 */
export function writeJsonAtomic(path: string, obj: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(obj, null, 2)}\n`);
}
