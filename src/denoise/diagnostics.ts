import sharp from 'sharp';
import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import {
  layerDiagnostics,
  type ShrinkSummary,
  summariseSingularValues,
} from './diagnostics-math.js';
import type { ConversionPlan } from './plan.js';
import { layerWeight } from './select.js';

/** What fusion did to one layer. */
export interface LayerReport {
  layer: string;
  t: number;
  dim: number;
  /** Singular values of c3 I − c1 Wd, descending (omitted above `maxSpectrumDim`). */
  singularValues?: number[];
  summary?: ShrinkSummary;
  /** ‖W' − W‖_F / ‖W‖_F */
  relativeWeightChange: number;
  lossBefore?: number;
  lossAfter?: number;
}

function relChange(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (b[i]! - a[i]!) ** 2;
    den += a[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/**
 * Per-layer diagnostics of a fusion: the spectrum of the fused map c3 I − c1 Wd (how
 * much each feature direction is shrunk or amplified), the relative change of the weight,
 * and the denoising loss before/after training when given.
 * @param maxSpectrumDim - skip the eigen-decomposition for larger layers (it is O(n³))
 *   unless `spectra` gives the layer's spectrum
 * @param spectra - singular values of c3 I − c1 Wd by layer, already known (the closed
 *   form has them from the eigenvalues of the input covariance, at any size)
 */
export function diagnoseFusion(opts: {
  plan: ConversionPlan;
  original: Model;
  fused: Model;
  denoisers: Map<string, Tensor>;
  lossBefore?: Record<string, number>;
  lossAfter?: Record<string, number>;
  maxSpectrumDim?: number;
  spectra?: Map<string, Float64Array>;
}): LayerReport[] {
  const maxDim = opts.maxSpectrumDim ?? 512;
  return opts.plan.layers.map((p) => {
    // The weight each layer reads: after fusion a layer may read its own copy.
    const w0 = layerWeight(opts.original.graph, p.layer).data as Float32Array;
    const w1 = layerWeight(opts.fused.graph, p.layer).data as Float32Array;
    const rep: LayerReport = {
      layer: p.layer.name,
      t: p.t,
      dim: p.dim,
      relativeWeightChange: relChange(w0, w1),
    };
    const known = opts.spectra?.get(p.layer.name);
    if (known) {
      rep.singularValues = Array.from(known);
      rep.summary = summariseSingularValues(known);
    } else if (p.dim <= maxDim) {
      const d = layerDiagnostics({
        wd: opts.denoisers.get(p.names.weight)!.data as Float32Array,
        n: p.dim,
        coeffs: p.coeffs,
      });
      rep.singularValues = Array.from(d.singularValues);
      rep.summary = d.summary;
    }
    if (opts.lossBefore) rep.lossBefore = opts.lossBefore[p.layer.name];
    if (opts.lossAfter) rep.lossAfter = opts.lossAfter[p.layer.name];
    return rep;
  });
}

/** Summary over layers of a fusion's diagnostics. */
export interface DiagnosticsSummary {
  layers: number;
  /** Mean over layers of ‖W' − W‖_F / ‖W‖_F. */
  meanRelWeightChange: number;
  /** Smallest and largest singular value of c3 I − c1 Wd over all layers. */
  minSingularValue: number;
  maxSingularValue: number;
  /** Directions shrunk by more than 1%, over all layers. */
  shrunkDirections: number;
  /** Summed per-layer denoising loss of the starting and of the trained denoisers. */
  lossBefore: number;
  lossAfter: number;
}

/** Sums and extremes over a fusion's per-layer reports (the demo's one-line summary). */
export function summarizeDiagnostics(layers: LayerReport[]): DiagnosticsSummary {
  const sv = layers.flatMap((l) => l.singularValues ?? []);
  return {
    layers: layers.length,
    meanRelWeightChange:
      layers.reduce((a, l) => a + l.relativeWeightChange, 0) / Math.max(1, layers.length),
    minSingularValue: Math.min(...sv),
    maxSingularValue: Math.max(...sv),
    shrunkDirections: layers.reduce((a, l) => a + (l.summary?.shrunk ?? 0), 0),
    lossBefore: layers.reduce((a, l) => a + (l.lossBefore ?? NaN), 0),
    lossAfter: layers.reduce((a, l) => a + (l.lossAfter ?? NaN), 0),
  };
}

/**
 * Draws the spectra as an SVG: one polyline per layer (singular values in descending
 * order against their rank, normalised to [0, 1]), coloured from the first layer (blue)
 * to the last (red), with y-axis ticks, the identity level 1 dashed, and a legend.
 * @param reports - per-layer diagnostics with singular values
 * @param title - heading drawn above the plot
 */
export function spectraSvg(
  reports: LayerReport[],
  title = 'Spectrum of c3·I − c1·Wd per layer',
): string {
  const W = 720;
  const H = 400;
  const m = { l: 78, r: 170, t: 34, b: 46 };
  const withSv = reports.filter((r) => r.singularValues && r.singularValues.length > 0);
  const all = withSv.flatMap((r) => r.singularValues!);
  const lo = Math.min(...all, 1);
  const hi = Math.max(...all, 1);
  const span = hi - lo || 1;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const y = (v: number) => m.t + ph * (1 - (v - lo) / span);
  const colour = (i: number) => {
    const f = withSv.length > 1 ? i / (withSv.length - 1) : 0;
    return `rgb(${Math.round(40 + 200 * f)},60,${Math.round(240 - 200 * f)})`;
  };
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const digits = Math.max(3, Math.ceil(-Math.log10(span)) + 2);
  const ticks = Array.from({ length: 5 }, (_, k) => lo + (span * k) / 4).map(
    (v) =>
      `<line x1="${m.l - 4}" x2="${m.l}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#333"/>` +
      `<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(digits)}</text>`,
  );
  const lines = withSv.map((r, i) => {
    const sv = r.singularValues!;
    const pts = sv
      .map(
        (v, k) => `${(m.l + (pw * k) / Math.max(1, sv.length - 1)).toFixed(1)},${y(v).toFixed(1)}`,
      )
      .join(' ');
    return `<polyline fill="none" stroke="${colour(i)}" stroke-width="1.2" points="${pts}"><title>${esc(r.layer)} (t=${r.t})</title></polyline>`;
  });
  // Legend: every layer when few, else the first, a middle and the last.
  const shown =
    withSv.length <= 12
      ? withSv.map((_, i) => i)
      : [0, Math.floor(withSv.length / 2), withSv.length - 1];
  const legend = shown.map((i, k) => {
    const ly = m.t + 14 * k + 6;
    const r = withSv[i]!;
    const name = r.layer.length > 20 ? `…${r.layer.slice(-19)}` : r.layer;
    return (
      `<line x1="${W - m.r + 12}" x2="${W - m.r + 30}" y1="${ly}" y2="${ly}" stroke="${colour(i)}" stroke-width="2"/>` +
      `<text x="${W - m.r + 34}" y="${ly + 4}">${esc(name)} (t=${r.t})</text>`
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="13">${esc(title)}</text>`,
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    ...ticks,
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<text x="${m.l + pw - 4}" y="${(y(1) - 4).toFixed(1)}" text-anchor="end" fill="#666">identity (1)</text>`,
    `<text x="${m.l + pw / 2}" y="${H - 12}" text-anchor="middle">direction, by singular value (largest left), normalised rank</text>`,
    `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">singular value</text>`,
    ...lines,
    ...legend,
    withSv.length > shown.length
      ? `<text x="${W - m.r + 12}" y="${m.t + 14 * shown.length + 10}" fill="#666">${withSv.length} layers, blue to red</text>`
      : '',
    '</svg>',
  ].join('\n');
}

/**
 * Renders the spectra SVG as a PNG (through sharp's SVG rasteriser).
 * @param svg - from {@link spectraSvg}
 */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}
