import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadMarket1501, parseMarketName } from '../../src/data/market1501.js';
import { DataError, UsageError } from '../../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'market-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Grey level that encodes a person id, so decoded images can be traced back to their file. */
const greyOf = (pid: number) => (pid < 0 ? 250 : 20 + 20 * (pid % 10));

async function person(file: string, pid: number): Promise<void> {
  const h = 8;
  const w = 4;
  const px = Buffer.alloc(h * w * 3, greyOf(pid));
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(file);
}

const root = path.join(tmp, 'Market-1501');
const dirs = {
  train: path.join(root, 'bounding_box_train'),
  query: path.join(root, 'query'),
  gallery: path.join(root, 'bounding_box_test'),
};
const opts = { size: [16, 8] as [number, number], channels: 3 as const };

before(async () => {
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
  const train = [
    ['0002_c1s1_000451_03.jpg', 2],
    ['0002_c2s1_000301_01.jpg', 2],
    ['0007_c3s3_000101_02.jpg', 7],
    ['0010_c6s1_000001_01.jpg', 10],
    ['-1_c1s1_000401_03.jpg', -1],
  ] as const;
  for (const [f, pid] of train) await person(path.join(dirs.train, f), pid);
  // A truncated JPEG: the only image of id 11.
  await person(path.join(dirs.train, '0011_c4s1_000001_01.jpg'), 11);
  const full = fs.readFileSync(path.join(dirs.train, '0011_c4s1_000001_01.jpg'));
  fs.writeFileSync(
    path.join(dirs.train, '0011_c4s1_000001_01.jpg'),
    full.subarray(0, full.length >> 1),
  );
  fs.writeFileSync(path.join(dirs.train, 'Thumbs.db'), 'windows thumbnail cache');
  await person(path.join(dirs.query, '0002_c2s1_000001_00.jpg'), 2);
  await person(path.join(dirs.query, '0007_c1s1_000001_00.jpg'), 7);
  const gallery = [
    ['0000_c1s1_000001_01.jpg', 0],
    ['-1_c3s1_000001_01.jpg', -1],
    ['0002_c5s1_000001_01.jpg', 2],
    ['0007_c4s1_000001_01.jpg', 7],
  ] as const;
  for (const [f, pid] of gallery) await person(path.join(dirs.gallery, f), pid);
});

describe('Market-1501 file names', () => {
  test('parse person id, 0-based camera, sequence, frame and box', () => {
    assert.deepEqual(parseMarketName('0002_c3s1_000451_03.jpg'), {
      pid: 2,
      camera: 2,
      sequence: 1,
      frame: 451,
      box: 3,
    });
    assert.deepEqual(parseMarketName('some/dir/-1_c6s4_000001_00.jpg').pid, -1);
    assert.equal(parseMarketName('0000_c1s1_000001_01.jpg').pid, 0);
  });

  test('bad names and cameras outside c1..c6 are DataErrors naming the file', () => {
    assert.throws(
      () => parseMarketName('x/person.jpg'),
      (e: unknown) =>
        e instanceof DataError && e.message.startsWith('x/person.jpg: not a Market-1501'),
    );
    assert.throws(() => parseMarketName('0002_c7s1_000451_03.jpg'), /c7 is outside c1\.\.c6/);
    assert.throws(() => parseMarketName('0002_c0s1_000451_03.jpg'), DataError);
    assert.equal(parseMarketName('0002_c8s1_000451_03.jpg', 8).camera, 7);
  });
});

describe('Market-1501 loader', () => {
  test('a corrupt train image is a DataError naming it unless skipCorrupt', async () => {
    await assert.rejects(
      loadMarket1501(root, 'train', opts),
      (e: unknown) => e instanceof DataError && e.message.includes('0011_c4s1_000001_01.jpg'),
    );
  });

  test('train: junk dropped, corrupt skipped, ids relabelled 0..K-1 over what remains', async () => {
    const r = await loadMarket1501(root, 'train', { ...opts, skipCorrupt: true });
    const ds = r.dataset;
    assert.equal(r.skipped, 1);
    assert.equal(r.junkDropped, 1);
    assert.equal(ds.size, 4);
    assert.deepEqual(
      ds.files!.map((f) => path.basename(f)),
      [
        '0002_c1s1_000451_03.jpg',
        '0002_c2s1_000301_01.jpg',
        '0007_c3s3_000101_02.jpg',
        '0010_c6s1_000001_01.jpg',
      ],
    );
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 2]);
    assert.deepEqual(Array.from(ds.cameras!), [0, 1, 2, 5]);
    assert.deepEqual(Array.from(r.personIds), [2, 7, 10]);
    assert.equal(ds.numClasses, 3);
    assert.equal(ds.height, 16);
    assert.equal(ds.width, 8);
    // Each decoded image has the grey level of its person id.
    const per = 3 * 16 * 8;
    for (let i = 0; i < ds.size; i++) {
      const pid = r.personIds[ds.labels[i]!]!;
      const mean = ds.images.subarray(i * per, (i + 1) * per).reduce((a, b) => a + b, 0) / per;
      assert.ok(Math.abs(mean - greyOf(pid) / 255) < 0.03, `image ${i}: ${mean}`);
    }
  });

  test('query and gallery keep original ids; distractors stay, junk is dropped by default', async () => {
    const q = await loadMarket1501(root, 'query', opts);
    assert.deepEqual(Array.from(q.dataset.labels), [2, 7]);
    assert.deepEqual(Array.from(q.dataset.cameras!), [1, 0]);
    const g = await loadMarket1501(root, 'gallery', opts);
    assert.equal(g.junkDropped, 1);
    assert.deepEqual(Array.from(g.dataset.labels), [0, 2, 7]);
    assert.deepEqual(Array.from(g.dataset.cameras!), [0, 4, 3]);
    assert.deepEqual(Array.from(g.personIds), [0, 2, 7]);
  });

  test('keepJunk keeps id -1 in the gallery with label -1, never in train', async () => {
    const g = await loadMarket1501(root, 'gallery', { ...opts, keepJunk: true });
    assert.equal(g.junkDropped, 0);
    assert.deepEqual(Array.from(g.dataset.labels), [-1, 0, 2, 7]);
    const t = await loadMarket1501(root, 'train', { ...opts, keepJunk: true, skipCorrupt: true });
    assert.ok(!Array.from(t.dataset.labels).includes(-1));
  });

  test('missing root or split folder, empty folder and bad names are DataErrors naming the path', async () => {
    await assert.rejects(
      loadMarket1501(path.join(tmp, 'nope'), 'train', opts),
      /nope: Market-1501 root does not exist/,
    );
    const partial = path.join(tmp, 'partial');
    fs.mkdirSync(path.join(partial, 'query'), { recursive: true });
    await assert.rejects(
      loadMarket1501(partial, 'gallery', opts),
      (e: unknown) =>
        e instanceof DataError && e.message.startsWith(path.join(partial, 'bounding_box_test')),
    );
    await assert.rejects(
      loadMarket1501(partial, 'query', opts),
      /no images in Market-1501 query folder/,
    );
    await person(path.join(partial, 'query', 'holiday.jpg'), 1);
    await assert.rejects(
      loadMarket1501(partial, 'query', opts),
      /holiday\.jpg: not a Market-1501 file name/,
    );
    await assert.rejects(loadMarket1501(root, 'val' as 'train', opts), UsageError);
  });
});
