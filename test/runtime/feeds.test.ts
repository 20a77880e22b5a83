// FeedChunks: batches run a few images at a time, sized from what each run reports, with
// views of every batched input and the other inputs passed whole.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { float32, type Tensor } from '../../src/onnx/tensor.js';
import { FeedChunks } from '../../src/runtime/feeds.js';

describe('FeedChunks', () => {
  test('first image alone, then runs sized to the budget, carried from batch to batch', async () => {
    const batch = (n: number, from: number): Record<string, Tensor> => ({
      x: float32(
        [n, 2],
        Float32Array.from({ length: 2 * n }, (_, i) => from + i),
      ),
      scale: float32([3], [1, 2, 3]), // not batched: passed whole
    });
    const chunks = new FeedChunks(100);
    const runs: { rows: number[]; scale: number }[] = [];
    // Each run reports 30 bytes per image: after the first, 3 images per run (floor(100/30)).
    const record = (f: Record<string, Tensor>) => {
      const rows = Array.from(f.x!.data as Float32Array).filter((_, i) => i % 2 === 0);
      runs.push({ rows, scale: f.scale!.data.length });
      return Promise.resolve(30 * f.x!.dims[0]!);
    };
    assert.equal(await chunks.forEach(batch(7, 0), record), 7);
    assert.equal(await chunks.forEach(batch(2, 100), record), 2);
    assert.deepEqual(
      runs.map((r) => r.rows),
      [[0], [2, 4, 6], [8, 10, 12], [100, 102]],
    );
    assert.ok(runs.every((r) => r.scale === 3));
  });

  test('the slices are views of the fed data, not copies', async () => {
    const x = float32([4, 1], [1, 2, 3, 4]);
    const seen: Float32Array[] = [];
    await new FeedChunks(1).forEach({ x }, (f) => {
      seen.push(f.x!.data as Float32Array);
      return Promise.resolve(8);
    });
    assert.equal(seen.length, 4);
    assert.ok(seen.every((d) => d.buffer === (x.data as Float32Array).buffer));
  });
});
