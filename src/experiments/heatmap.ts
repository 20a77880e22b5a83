/**
 * A heatmap of probe accuracy over (t, block): blocks as rows in forward order, noise
 * steps as columns, each cell coloured on a white-to-blue scale between the grid's lowest
 * and highest accuracy and labelled with its value; the best cell is outlined.
 */
import type { SweepCell } from './probe.js';
import { esc } from './svg-chart.js';

/** The widest advance of a character of 12-pixel sans-serif text, about. */
const CHAR_PX = 7;

/**
 * The sweep's heatmap as an SVG document.
 * @param cells - one accuracy (in [0, 1]) per (t, block)
 * @param opts.blocks - row order (default: order of first appearance)
 * @param opts.title - heading
 * @example
 * writeFileAtomic('sweep.svg', heatmapSvg(result.cells, { blocks: def.blocks }));
 */
export function heatmapSvg(
  cells: SweepCell[],
  opts: { blocks?: string[]; title?: string } = {},
): string {
  const ts = [...new Set(cells.map((c) => c.t))].sort((a, b) => a - b);
  const seen = [...new Set(cells.map((c) => c.block))];
  const blocks = (opts.blocks ?? seen).filter((b) => seen.includes(b));
  const at = new Map(cells.map((c) => [`${c.t}|${c.block}`, c.acc1]));
  const accs = cells.map((c) => c.acc1);
  const lo = Math.min(...accs);
  const hi = Math.max(...accs);
  const best = cells.reduce((a, c) => (c.acc1 > a.acc1 ? c : a), cells[0]!);
  const cw = 72;
  const ch = 30;
  // Room for the longest row label (about CHAR_PX per character at font size 12), and
  // the axis label on a line of its own below the title.
  const longest = Math.max(0, ...blocks.map((b) => b.length));
  const m = { l: Math.max(90, 16 + Math.ceil(CHAR_PX * longest)), t: 66, r: 20, b: 50 };
  const W = Math.max(560, m.l + cw * ts.length + m.r);
  const H = m.t + ch * blocks.length + m.b;
  const colour = (v: number) => {
    const f = hi > lo ? (v - lo) / (hi - lo) : 1;
    // white (255,255,255) to a deep blue (33,84,160)
    const mix = (a: number, b: number) => Math.round(a + (b - a) * f);
    return { fill: `rgb(${mix(255, 33)},${mix(255, 84)},${mix(255, 160)})`, dark: f > 0.55 };
  };
  const rects: string[] = [];
  blocks.forEach((block, r) => {
    rects.push(
      `<text x="${m.l - 8}" y="${m.t + ch * r + ch / 2 + 4}" text-anchor="end">${esc(block)}</text>`,
    );
    ts.forEach((t, c) => {
      const v = at.get(`${t}|${block}`);
      const x = m.l + cw * c;
      const y = m.t + ch * r;
      if (v === undefined) {
        rects.push(`<rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="#eee"/>`);
        return;
      }
      const { fill, dark } = colour(v);
      const isBest = t === best.t && block === best.block;
      rects.push(
        `<rect x="${x}" y="${y}" width="${cw}" height="${ch}" fill="${fill}"${isBest ? ' stroke="#d62728" stroke-width="3"' : ' stroke="white"'}><title>t=${t}, ${esc(block)}: ${(100 * v).toFixed(2)}%</title></rect>`,
        `<text x="${x + cw / 2}" y="${y + ch / 2 + 4}" text-anchor="middle" fill="${dark ? 'white' : '#222'}">${(100 * v).toFixed(1)}</text>`,
      );
    });
  });
  const cols = ts.map(
    (t, c) => `<text x="${m.l + cw * c + cw / 2}" y="${m.t - 8}" text-anchor="middle">${t}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="13">${esc(opts.title ?? 'Linear-probe acc@1 (%) by noise step t and block')}</text>`,
    `<text x="${m.l + (cw * ts.length) / 2}" y="${m.t - 28}" text-anchor="middle" fill="#555">noise step t</text>`,
    ...cols,
    ...rects,
    `<text x="${m.l}" y="${H - 18}" fill="#555">best: t=${best.t}, ${esc(best.block)}, ${(100 * best.acc1).toFixed(2)}% (outlined); colour from ${(100 * lo).toFixed(1)}% to ${(100 * hi).toFixed(1)}%</text>`,
    '</svg>',
  ].join('\n');
}
