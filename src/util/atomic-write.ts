import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';

let counter = 0;

/**
 * Writes a file so that readers see either the old contents or the new, never a partial
 * file: the data goes to a temporary file in the same folder (so that the rename stays
 * on one file system), is flushed to disk, then renamed over the target. On failure the
 * temporary file is removed, the target is untouched and the error is rethrown.
 * @param path - target file; its folder must exist
 * @param data - contents (a string is written as UTF-8)
 * @example
 * writeFileAtomic('runs/a/table.md', '| a | b |\n');
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
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
