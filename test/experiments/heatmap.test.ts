// The sweep's heatmap: one cell per (t, block), coloured between the grid's lowest and
// highest accuracy, the best cell outlined, names escaped.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { heatmapSvg } from '../../src/experiments/heatmap.js';

describe('heatmapSvg', () => {
  const cells = [
    { t: 0, block: 'mid', acc1: 0.8 },
    { t: 10, block: 'mid', acc1: 0.91 },
    { t: 0, block: 'a<b', acc1: 0.85 },
    { t: 10, block: 'a<b', acc1: 0.855 },
  ];
  const svg = heatmapSvg(cells, { blocks: ['a<b', 'mid', 'absent'] });

  test('the lowest cell is white, the highest deep blue and outlined; others in between', () => {
    const rects = [...svg.matchAll(/<rect [^>]*fill="(rgb\([^"]+\))"([^>]*)><title>([^<]+)</g)];
    const byTitle = new Map(rects.map((m) => [m[3]!, { fill: m[1]!, rest: m[2]! }]));
    assert.equal(byTitle.size, 4);
    assert.equal(byTitle.get('t=0, mid: 80.00%')!.fill, 'rgb(255,255,255)');
    const best = byTitle.get('t=10, mid: 91.00%')!;
    assert.equal(best.fill, 'rgb(33,84,160)');
    assert.match(best.rest, /stroke="#d62728"/);
    // 85% is 5/11 of the way from 80% to 91%: each channel 255 + (end − 255)·5/11, rounded:
    // red 255 − 100.9, green 255 − 77.7, blue 255 − 43.2.
    assert.equal(byTitle.get('t=0, a&lt;b: 85.00%')!.fill, 'rgb(154,177,212)');
    assert.equal([...svg.matchAll(/stroke="#d62728"/g)].length, 1);
  });

  test('rows in the given order, blocks without cells dropped, columns by t', () => {
    assert.ok(svg.indexOf('>a&lt;b</text>') < svg.indexOf('>mid</text>'));
    assert.ok(!svg.includes('absent'));
    assert.ok(!svg.includes('a<b'));
    assert.match(svg, /best: t=10, mid, 91\.00%/);
  });

  test('long row labels fit in the margin; the axis label sits clear of the title', () => {
    const name = 'encoder.layers.11.mlp.fc2';
    const long = heatmapSvg([{ t: 0, block: name, acc1: 0.5 }]);
    const row = long.match(new RegExp(`<text x="([\\d.]+)"[^>]*text-anchor="end">${name}<`))!;
    // Right-aligned at x: its text starts about 7 px per character to the left.
    assert.ok(Number(row[1]) - 7 * name.length >= 0, `label starts at ${row[1]}`);
    const y = (re: RegExp) => Number(long.match(re)![1]);
    const title = y(/<text x="[\d.]+" y="([\d.]+)" font-size="13">/);
    const axis = y(/y="([\d.]+)"[^>]*>noise step t</);
    const columns = y(/y="([\d.]+)" text-anchor="middle">0</);
    // Baselines at least a line (13 px text, 12 px labels) apart.
    assert.ok(axis - title >= 16 && columns - axis >= 14, `${title}, ${axis}, ${columns}`);
  });
});
