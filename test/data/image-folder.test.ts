import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { UNLABELED } from '../../src/data/dataset.js';
import {
  decodeImage,
  listImageFiles,
  loadImageDir,
  loadImageFiles,
  loadImageFolder,
  mapPool,
} from '../../src/data/image-folder.js';
import { DataError, UsageError } from '../../src/util/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'image-folder-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes an h×w image of one colour (1 or 3 channels) in the format given by the extension. */
async function solid(file: string, h: number, w: number, colour: number[]): Promise<void> {
  const ch = colour.length as 1 | 3;
  const px = Buffer.alloc(h * w * ch);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < ch; c++) px[p * ch + c] = colour[c]!;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(px, { raw: { width: w, height: h, channels: ch } }).toFile(file);
}

const corruptBytes = Buffer.from('this is not an image at all, just some text bytes', 'utf8');

describe('decodeImage', () => {
  test('HWC pixels become CHW planes; size kept when equal', async () => {
    // 2×2 RGB: (0,0) red, (0,1) green, (1,0) blue, (1,1) white.
    const px = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const file = path.join(tmp, 'quad.png');
    await sharp(px, { raw: { width: 2, height: 2, channels: 3 } })
      .png()
      .toFile(file);
    const chw = await decodeImage(file, [2, 2], 3);
    assert.deepEqual(Array.from(chw), [1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1]);
  });

  test('resizes to the requested size; grey is replicated to 3 channels and RGB grey to 1', async () => {
    const grey = path.join(tmp, 'grey.png');
    await solid(grey, 3, 5, [51]);
    const rgb = await decodeImage(grey, [4, 6], 3);
    assert.equal(rgb.length, 3 * 4 * 6);
    for (const v of rgb) assert.ok(Math.abs(v - 0.2) < 1e-6);
    const rgbGrey = path.join(tmp, 'rgb-grey.png');
    await solid(rgbGrey, 3, 5, [102, 102, 102]);
    const one = await decodeImage(rgbGrey, [7, 2], 1);
    assert.equal(one.length, 14);
    for (const v of one) assert.ok(Math.abs(v - 0.4) < 2 / 255, `${v}`);
  });

  test('a corrupt file is a DataError naming it', async () => {
    const bad = path.join(tmp, 'bad.png');
    fs.writeFileSync(bad, corruptBytes);
    await assert.rejects(
      decodeImage(bad, [4, 4], 3),
      (e: unknown) => e instanceof DataError && e.message.startsWith(`${bad}: cannot decode image`),
    );
  });
});

describe('mapPool', () => {
  test('keeps order and never runs more than the limit at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapPool([5, 1, 4, 2, 3, 0, 6], 3, async (v) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, v));
      inFlight--;
      return v * 10;
    });
    assert.deepEqual(out, [50, 10, 40, 20, 30, 0, 60]);
    assert.equal(peak, 3);
  });
});

describe('ImageFolder', () => {
  const root = path.join(tmp, 'folder');
  before(async () => {
    await solid(path.join(root, 'dog', 'c.png'), 5, 3, [0, 0, 255]);
    await solid(path.join(root, 'cat', 'b.jpg'), 6, 4, [0, 255, 0]);
    await solid(path.join(root, 'cat', 'a.png'), 4, 6, [255, 0, 0]);
    await solid(path.join(root, 'dog', 'd.webp'), 4, 4, [255, 255, 255]);
    fs.writeFileSync(path.join(root, 'dog', 'bad.png'), corruptBytes);
    fs.writeFileSync(path.join(root, 'dog', 'notes.txt'), 'not an image');
    fs.mkdirSync(path.join(root, '.cache'));
  });

  test('without skipCorrupt, the corrupt file is a DataError naming it', async () => {
    await assert.rejects(
      loadImageFolder(root, { size: [8, 8], channels: 3 }),
      (e: unknown) =>
        e instanceof DataError && e.message.includes(path.join(root, 'dog', 'bad.png')),
    );
  });

  test('classes are sorted sub-folders; files sorted; corrupt skipped and counted', async () => {
    const {
      dataset: ds,
      skipped,
      skippedFiles,
    } = await loadImageFolder(root, {
      size: [8, 8],
      channels: 3,
      skipCorrupt: true,
    });
    assert.equal(skipped, 1);
    assert.deepEqual(skippedFiles, [path.join(root, 'dog', 'bad.png')]);
    assert.deepEqual(ds.classNames, ['cat', 'dog']);
    assert.equal(ds.numClasses, 2);
    assert.equal(ds.size, 4);
    assert.deepEqual(
      ds.files!.map((f) => path.relative(root, f)),
      [
        path.join('cat', 'a.png'),
        path.join('cat', 'b.jpg'),
        path.join('dog', 'c.png'),
        path.join('dog', 'd.webp'),
      ],
    );
    assert.deepEqual(Array.from(ds.labels), [0, 0, 1, 1]);
    assert.equal(ds.images.length, 4 * 3 * 64);
    // Mean of each channel plane identifies the colour of each image (jpg/webp are lossy).
    const expected = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [1, 1, 1],
    ];
    for (let i = 0; i < 4; i++) {
      for (let c = 0; c < 3; c++) {
        const plane = ds.images.subarray((i * 3 + c) * 64, (i * 3 + c + 1) * 64);
        const mean = plane.reduce((a, b) => a + b, 0) / 64;
        assert.ok(Math.abs(mean - expected[i]![c]!) < 0.05, `image ${i} channel ${c}: ${mean}`);
      }
    }
  });

  test('an empty class folder, a root without classes and a missing root are DataErrors', async () => {
    const r2 = path.join(tmp, 'folder2');
    await solid(path.join(r2, 'a', 'x.png'), 2, 2, [9]);
    fs.mkdirSync(path.join(r2, 'b'));
    await assert.rejects(
      loadImageFolder(r2, { size: [2, 2], channels: 1 }),
      (e: unknown) => e instanceof DataError && e.message.startsWith(path.join(r2, 'b')),
    );
    const r3 = path.join(tmp, 'folder3');
    fs.mkdirSync(r3);
    await assert.rejects(
      loadImageFolder(r3, { size: [2, 2], channels: 1 }),
      /no class sub-folders/,
    );
    await assert.rejects(
      loadImageFolder(path.join(tmp, 'absent'), { size: [2, 2], channels: 1 }),
      /absent: ImageFolder root does not exist/,
    );
  });

  test('bad options are UsageErrors', async () => {
    await assert.rejects(loadImageFolder(root, { size: [0, 8], channels: 3 }), UsageError);
    await assert.rejects(loadImageFolder(root, { size: [8, 8], channels: 2 as 3 }), UsageError);
  });
});

describe('flat folders of unlabeled images', () => {
  const dir = path.join(tmp, 'flat');
  before(async () => {
    await solid(path.join(dir, 'b.png'), 3, 3, [255]);
    await solid(path.join(dir, 'a.JPG'), 3, 3, [0]);
    fs.writeFileSync(path.join(dir, 'c.jpeg'), corruptBytes);
    fs.writeFileSync(path.join(dir, 'readme.md'), '# no');
  });

  test('listImageFiles keeps image extensions (any case), sorted', async () => {
    assert.deepEqual(
      (await listImageFiles(dir)).map((f) => path.basename(f)),
      ['a.JPG', 'b.png', 'c.jpeg'],
    );
  });

  test('loadImageDir labels everything UNLABELED and counts skipped files', async () => {
    await assert.rejects(
      loadImageDir(dir, { size: [2, 2], channels: 1 }),
      /c\.jpeg: cannot decode image/,
    );
    const { dataset: ds, skipped } = await loadImageDir(dir, {
      size: [2, 2],
      channels: 1,
      skipCorrupt: true,
    });
    assert.equal(skipped, 1);
    assert.equal(ds.size, 2);
    assert.equal(ds.numClasses, 0);
    assert.deepEqual(Array.from(ds.labels), [UNLABELED, UNLABELED]);
    for (let p = 0; p < 4; p++) {
      assert.ok(ds.images[p]! < 0.05, 'a.JPG is black');
      assert.equal(ds.images[4 + p], 1, 'b.png is white');
    }
  });

  test('empty inputs and all-corrupt inputs are DataErrors', async () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    await assert.rejects(
      loadImageDir(empty, { size: [2, 2], channels: 1 }),
      (e: unknown) => e instanceof DataError && e.message.startsWith(empty),
    );
    await assert.rejects(loadImageFiles([], { size: [2, 2], channels: 1 }), DataError);
    await assert.rejects(
      loadImageFiles([path.join(dir, 'c.jpeg')], { size: [2, 2], channels: 1, skipCorrupt: true }),
      /all 1 images failed to decode/,
    );
  });
});

describe('symbolic links are followed, once', () => {
  const root = path.join(tmp, 'links');
  const real = path.join(root, 'real');
  const colours = [[200, 10, 10], [10, 200, 10], [10, 10, 200]];
  const opts = { size: [4, 4] as [number, number], channels: 3 as const };

  before(async () => {
    await Promise.all(colours.map((c, i) => solid(path.join(real, `img${i}.png`), 5, 5, c)));
    // A folder of links alone: relative and absolute links, one a link to a link.
    const linked = path.join(root, 'linked');
    fs.mkdirSync(linked, { recursive: true });
    fs.symlinkSync(path.join('..', 'real', 'img0.png'), path.join(linked, 'a.png'));
    fs.symlinkSync(path.join(real, 'img1.png'), path.join(linked, 'b.png'));
    fs.symlinkSync('b.png', path.join(linked, 'c-via-b.png'));
    fs.symlinkSync(path.join(real, 'img2.png'), path.join(linked, 'd.png'));
    // A link to a folder inside a flat folder is a sub-folder: not listed, never entered.
    fs.symlinkSync('..', path.join(linked, 'up.png'));
  });

  test('a folder of links to images reads the same pixels as the images; each image once', async () => {
    const files = await listImageFiles(path.join(root, 'linked'));
    // c-via-b.png reaches img1.png again: listed once, under its first name.
    assert.deepEqual(
      files.map((f) => path.basename(f)),
      ['a.png', 'b.png', 'd.png'],
    );
    const viaLinks = await loadImageDir(path.join(root, 'linked'), opts);
    const direct = await loadImageDir(real, opts);
    assert.equal(viaLinks.dataset.size, 3);
    assert.deepEqual(viaLinks.dataset.images, direct.dataset.images);
    // The images differ (each its own colour), so equal blocks mean equal order too.
    assert.notDeepEqual(direct.dataset.images.slice(0, 48), direct.dataset.images.slice(48, 96));
  });

  test('a class folder may be a link; a link back to the root is refused, not followed', async () => {
    const ds = path.join(root, 'folder');
    fs.mkdirSync(path.join(ds, 'b-real'), { recursive: true });
    fs.copyFileSync(path.join(real, 'img2.png'), path.join(ds, 'b-real', 'x.png'));
    fs.symlinkSync(real, path.join(ds, 'a-linked'));
    const { dataset } = await loadImageFolder(ds, opts);
    assert.deepEqual(dataset.classNames, ['a-linked', 'b-real']);
    assert.deepEqual(Array.from(dataset.labels), [0, 0, 0, 1]);
    fs.symlinkSync('.', path.join(ds, 'c-self'));
    await assert.rejects(
      loadImageFolder(ds, opts),
      (e: unknown) =>
        e instanceof DataError && /c-self: symbolic link loops back to /.test(e.message),
    );
    fs.unlinkSync(path.join(ds, 'c-self'));
    fs.symlinkSync(root, path.join(ds, 'c-up'));
    await assert.rejects(loadImageFolder(ds, opts), /c-up: symbolic link loops back/);
  });

  test('a dangling link or a link cycle with an image name is a DataError naming it', async () => {
    const dangling = path.join(root, 'dangling');
    fs.mkdirSync(dangling);
    fs.copyFileSync(path.join(real, 'img0.png'), path.join(dangling, 'ok.png'));
    fs.symlinkSync('gone.png', path.join(dangling, 'z.png'));
    await assert.rejects(
      loadImageDir(dangling, opts),
      (e: unknown) =>
        e instanceof DataError &&
        e.message === `${path.join(dangling, 'z.png')}: symbolic link to a missing file (gone.png)`,
    );
    const cycle = path.join(root, 'cycle');
    fs.mkdirSync(cycle);
    fs.symlinkSync('q.png', path.join(cycle, 'p.png'));
    fs.symlinkSync('p.png', path.join(cycle, 'q.png'));
    await assert.rejects(
      listImageFiles(cycle),
      (e: unknown) => e instanceof DataError && /p\.png: symbolic link loop/.test(e.message),
    );
    // A dangling link without an image name is not an image: ignored like any other file.
    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    fs.copyFileSync(path.join(real, 'img0.png'), path.join(other, 'ok.png'));
    fs.symlinkSync('gone.txt', path.join(other, 'notes.txt'));
    assert.deepEqual(await listImageFiles(other), [path.join(other, 'ok.png')]);
  });
});
