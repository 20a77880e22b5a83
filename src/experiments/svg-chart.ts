/**
 * Small self-contained SVG charts for the study report: lines or points with optional
 * interval bars, linear or log x axis, numeric or categorical x, ticks and a legend.
 * Output is plain SVG markup with no external reference (fonts are the browser's
 * sans-serif), so a report embedding it fetches nothing.
 */

/** One point; `lo`/`hi` draw an interval bar. */
export interface ChartPoint {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  color?: string;
  /** Draw the connecting line (default true). */
  line?: boolean;
  dashed?: boolean;
  /** Draw point markers (default true). */
  markers?: boolean;
  /** Line width (default 1.8). */
  width?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  width?: number;
  height?: number;
  logX?: boolean;
  /** Category names: x values are indices into them, drawn as labels. */
  categories?: string[];
  /** Horizontal reference lines. */
  hLines?: { y: number; label: string; color?: string }[];
  /** Hide the legend (many unnamed series). */
  legend?: boolean;
}

/** A palette that stays readable for about ten series. */
export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

/** Escapes text for XML and HTML. */
export function esc(t: string): string {
  return t
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times 10^k). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return Number(v.toPrecision(4)).toString();
}

/**
 * Renders a chart.
 * @param o - title, axis labels, series, options
 * @returns an `<svg>` element (no XML declaration, no external references)
 * @example
 * lineChart({ title: 'acc', xLabel: 'scale', yLabel: '%', logX: true, series: [{ name: 'a', points }] });
 */
export function lineChart(o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 360;
  const showLegend = o.legend ?? true;
  const m = { l: 64, r: showLegend ? 170 : 20, t: 32, b: o.categories ? 96 : 46 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = o.series.flatMap((s) => s.points);
  const ys = pts
    .flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y])
    .concat((o.hLines ?? []).map((h) => h.y));
  const finite = ys.filter(Number.isFinite);
  let yLo = finite.length ? Math.min(...finite) : 0;
  let yHi = finite.length ? Math.max(...finite) : 1;
  if (yHi - yLo < 1e-12) {
    yLo -= 0.5;
    yHi += 0.5;
  }
  const pad = 0.06 * (yHi - yLo);
  yLo -= pad;
  yHi += pad;
  const xs = pts.map((p) => p.x);
  let xLo: number;
  let xHi: number;
  if (o.categories) {
    xLo = -0.5;
    xHi = o.categories.length - 0.5;
  } else {
    xLo = xs.length ? Math.min(...xs) : 0;
    xHi = xs.length ? Math.max(...xs) : 1;
    if (xHi === xLo) {
      xLo = o.logX ? xLo / 2 : xLo - 1;
      xHi = o.logX ? xHi * 2 : xHi + 1;
    }
    // A margin so that the first and last points (and their bars) sit inside the frame.
    if (o.logX) {
      const f = (Math.log10(xHi) - Math.log10(xLo)) * 0.04;
      xLo /= 10 ** f;
      xHi *= 10 ** f;
    } else {
      const f = (xHi - xLo) * 0.04;
      xLo -= f;
      xHi += f;
    }
  }
  const tx = (v: number) => (o.logX ? Math.log10(v) : v);
  const X = (v: number) => m.l + (pw * (tx(v) - tx(xLo))) / (tx(xHi) - tx(xLo));
  const Y = (v: number) => m.t + ph * (1 - (v - yLo) / (yHi - yLo));
  const parts: string[] = [
    `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11" role="img">`,
    `<title>${esc(o.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="13" font-weight="bold">${esc(o.title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
  ];
  for (const v of niceTicks(yLo, yHi)) {
    const y = Y(v).toFixed(1);
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${(Number(y) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  let xt: { v: number; label: string }[];
  if (o.categories) xt = o.categories.map((c, i) => ({ v: i, label: c }));
  else if (o.logX) {
    const lo = Math.floor(Math.log10(xLo) + 1e-9);
    const hi = Math.ceil(Math.log10(xHi) - 1e-9);
    // At most about 8 labelled decades.
    const every = Math.max(1, Math.ceil((hi - lo) / 8));
    xt = [];
    for (let k = lo; k <= hi; k++)
      for (const mult of hi - lo <= 2 ? [1, 2, 5] : k % every === 0 ? [1] : []) {
        const v = mult * 10 ** k;
        if (v >= xLo * 0.999 && v <= xHi * 1.001) xt.push({ v, label: fmt(v) });
      }
  } else xt = niceTicks(xLo, xHi).map((v) => ({ v, label: fmt(v) }));
  for (const t of xt) {
    const x = X(t.v).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t + ph}" y2="${m.t + ph + 4}" stroke="#333"/>`);
    parts.push(
      o.categories
        ? `<text transform="translate(${x} ${m.t + ph + 10}) rotate(35)" text-anchor="start">${esc(t.label)}</text>`
        : `<text x="${x}" y="${m.t + ph + 16}" text-anchor="middle">${esc(t.label)}</text>`,
    );
  }
  parts.push(
    `<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  for (const h of o.hLines ?? []) {
    const y = Y(h.y).toFixed(1);
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="${h.color ?? '#999'}" stroke-dasharray="5 4"/>`,
      `<text x="${m.l + pw - 4}" y="${(Number(y) - 4).toFixed(1)}" text-anchor="end" fill="${h.color ?? '#666'}">${esc(h.label)}</text>`,
    );
  }
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const sorted = [...s.points].filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if ((s.line ?? true) && sorted.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="${s.width ?? 1.8}"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${sorted
          .map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`)
          .join(' ')}"><title>${esc(s.name)}</title></polyline>`,
      );
    }
    for (const p of sorted) {
      const x = X(p.x).toFixed(1);
      if (
        p.lo !== undefined &&
        p.hi !== undefined &&
        Number.isFinite(p.lo) &&
        Number.isFinite(p.hi)
      ) {
        parts.push(
          `<line x1="${x}" x2="${x}" y1="${Y(p.lo).toFixed(1)}" y2="${Y(p.hi).toFixed(1)}" stroke="${color}" stroke-width="1.4"/>`,
          `<line x1="${Number(x) - 3}" x2="${Number(x) + 3}" y1="${Y(p.lo).toFixed(1)}" y2="${Y(p.lo).toFixed(1)}" stroke="${color}"/>`,
          `<line x1="${Number(x) - 3}" x2="${Number(x) + 3}" y1="${Y(p.hi).toFixed(1)}" y2="${Y(p.hi).toFixed(1)}" stroke="${color}"/>`,
        );
      }
      if (s.markers ?? true)
        parts.push(
          `<circle cx="${x}" cy="${Y(p.y).toFixed(1)}" r="3" fill="${color}"><title>${esc(
            `${s.name}: ${fmt(p.y)}${p.lo !== undefined ? ` [${fmt(p.lo)}, ${fmt(p.hi!)}]` : ''}`,
          )}</title></circle>`,
        );
    }
  });
  if (showLegend) {
    o.series.slice(0, 16).forEach((s, i) => {
      const color = s.color ?? PALETTE[i % PALETTE.length]!;
      const ly = m.t + 8 + 15 * i;
      const name = s.name.length > 24 ? `${s.name.slice(0, 23)}…` : s.name;
      parts.push(
        `<line x1="${W - m.r + 10}" x2="${W - m.r + 28}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
        `<text x="${W - m.r + 32}" y="${ly + 4}">${esc(name)}</text>`,
      );
    });
  }
  parts.push('</svg>');
  return parts.join('\n');
}
