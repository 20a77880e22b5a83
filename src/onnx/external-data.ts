/**
 * Files next to a model: opening them safely for reading (external data, the model file
 * itself) and writing tensors out as external data.
 *
 * Reading refuses what cannot be a model's data without touching its contents: a path
 * that leaves the model's folder (absolute, `..`, or a symbolic link out), and anything
 * that is not a regular file. A FIFO, a socket or a device named as a location is opened
 * non-blocking and checked with fstat on the opened descriptor, so it can neither hang
 * the reader nor be swapped in between the check and the read.
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { threadId } from 'node:worker_threads';
import { removeStaleTemps } from '../util/atomic-write.js';

/** An opened regular file: its size, and reads of exact byte ranges. */
export interface OpenedFile {
  /** Size in bytes when opened. */
  readonly size: number;
  /** Reads `length` bytes at `offset` (both checked against the size by the caller). */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

/** True when `path` is `dir` or lies below it (both absolute). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Opens a file for reading only if it is a regular file: non-blocking (a FIFO returns at
 * once instead of waiting for a writer), then fstat on the descriptor. Errors are plain
 * Errors with a short reason; callers wrap them with the file or tensor at fault.
 * @param path - the file
 * @example
 * const f = openRegularFile('w.bin'); const head = f.read(0, 16); f.close();
 */
export function openRegularFile(path: string): OpenedFile {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  let size: number;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${kindOf(st)}, not a regular file`);
    size = st.size;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let open = true;
  return {
    size,
    read(offset, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, out, done, length - done, offset + done);
        if (n === 0) throw new Error(`the file ended at byte ${offset + done} (it shrank)`);
        done += n;
      }
      return out;
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

function kindOf(st: ReturnType<typeof fstatSync>): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isDirectory()) return 'a folder';
  return 'a special file';
}

/**
 * Opens an external-data file for a model in `dir`: `full` (already checked to lie inside
 * `dir` by name) must, links resolved, still lie inside `dir`, and be a regular file.
 * @param dir - the model's folder
 * @param full - absolute path of the location
 */
export function openInside(dir: string, full: string): OpenedFile {
  const real = realpathSync(full);
  if (!isInside(realpathSync(dir), real))
    throw new Error(`it resolves to ${real}, outside the model's folder, through a link`);
  return openRegularFile(real);
}

/**
 * Reads a whole file that must be a regular file of at most `maxBytes`, as a model file
 * is (protobuf cannot hold more than 2 GB).
 * @param path - the file
 * @param maxBytes - size limit
 */
export function readRegularFile(path: string, maxBytes: number): Uint8Array {
  const f = openRegularFile(path);
  try {
    if (f.size > maxBytes)
      throw new Error(`it is ${f.size} bytes, over the ${maxBytes}-byte limit of an ONNX file`);
    return f.read(0, f.size);
  } finally {
    f.close();
  }
}

// ---------------------------------------------------------------------------------------
// Writing

/** One tensor placed in a data file. */
export interface Placement {
  location: string;
  offset: number;
  length: number;
}

/**
 * Offsets of tensors laid out one after another in their files: each starts on a 64-byte
 * boundary, and tensors of 1 MiB or more on a 4 KiB (page) boundary so that ONNX Runtime
 * can map them from the file instead of copying them.
 * @param tensors - name, target location and byte length, in file order
 * @returns the placement of each tensor by name, and each file's total size
 */
export function layOut(tensors: { name: string; location: string; length: number }[]): {
  placements: Map<string, Placement>;
  sizes: Map<string, number>;
} {
  const placements = new Map<string, Placement>();
  const sizes = new Map<string, number>();
  for (const t of tensors) {
    const align = t.length >= 2 ** 20 ? 4096 : 64;
    const end = sizes.get(t.location) ?? 0;
    const offset = Math.ceil(end / align) * align;
    placements.set(t.name, { location: t.location, offset, length: t.length });
    sizes.set(t.location, offset + t.length);
  }
  return { placements, sizes };
}

let counter = 0;

/**
 * Writes a file from byte ranges at given offsets (gaps are zero), atomically: into a
 * temporary file in the same folder (named like every atomic write of this tool,
 * `.NAME.PID.THREAD.N.tmp`, and stale ones of a killed writer removed first), flushed,
 * then renamed over the target. The chunks are written one by one, so the file may be far
 * larger than any one buffer.
 * @param path - target file; its folder must exist
 * @param size - total size
 * @param chunks - (offset, bytes) pairs
 */
export function writeChunksAtomic(
  path: string,
  size: number,
  chunks: Iterable<{ offset: number; bytes: Uint8Array }>,
): void {
  removeStaleTemps(path);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${threadId}.${counter++}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(tmp, 'wx');
    created = true;
    let end = 0;
    for (const { offset, bytes } of chunks) {
      let done = 0;
      while (done < bytes.length)
        done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
      end = Math.max(end, offset + bytes.length);
    }
    // Trailing alignment padding, if the last chunk ends early, as zeros.
    if (end < size) writeSync(fd, new Uint8Array(size - end), 0, size - end, end);
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
 * Names of the data files of a model written to `modelPath`: derived from the model's
 * own file name, never taken over from the model it was read from, so that writing a
 * fused model next to its original cannot overwrite the original's data.
 * @param modelPath - the .onnx file being written
 * @param count - number of data files
 * @returns locations relative to the model's folder: `NAME.data`, or `NAME.0.data`, …
 */
export function dataFileNames(modelPath: string, count: number): string[] {
  const base = basename(resolve(modelPath));
  if (count === 1) return [`${base}.data`];
  return Array.from({ length: count }, (_, i) => `${base}.${i}.data`);
}
