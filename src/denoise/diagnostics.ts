import type { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { layerDiagnostics, type ShrinkSummary } from './diagnostics-math.js';
import type { ConversionPlan } from './plan.js';

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
 */
export function diagnoseFusion(opts: {
  plan: ConversionPlan;
  original: Model;
  fused: Model;
  denoisers: Map<string, Tensor>;
  lossBefore?: Record<string, number>;
  lossAfter?: Record<string, number>;
  maxSpectrumDim?: number;
}): LayerReport[] {
  const maxDim = opts.maxSpectrumDim ?? 512;
  return opts.plan.layers.map((p) => {
    const w0 = opts.original.graph.initializers.get(p.layer.weight)!.data as Float32Array;
    const w1 = opts.fused.graph.initializers.get(p.layer.weight)!.data as Float32Array;
    const rep: LayerReport = {
      layer: p.layer.name,
      t: p.t,
      dim: p.dim,
      relativeWeightChange: relChange(w0, w1),
    };
    if (p.dim <= maxDim) {
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

/**
 * Draws the spectra as an SVG: one polyline per layer (singular value against its rank,
 * normalised to [0, 1]), coloured from the first layer (blue) to the last (red), with
 * the identity level 1 marked.
 */
export function spectraSvg(
  reports: LayerReport[],
  title = 'Spectrum of c3·I − c1·Wd per layer',
): string {
  const W = 640;
  const H = 360;
  const m = { l: 60, r: 20, t: 30, b: 40 };
  const withSv = reports.filter((r) => r.singularValues && r.singularValues.length > 0);
  const all = withSv.flatMap((r) => r.singularValues!);
  const lo = Math.min(...all, 1);
  const hi = Math.max(...all, 1);
  const span = hi - lo || 1;
  const y = (v: number) => m.t + (H - m.t - m.b) * (1 - (v - lo) / span);
  const lines = withSv.map((r, i) => {
    const sv = r.singularValues!;
    const pts = sv
      .map(
        (v, k) =>
          `${(m.l + ((W - m.l - m.r) * k) / Math.max(1, sv.length - 1)).toFixed(1)},${y(v).toFixed(1)}`,
      )
      .join(' ');
    const f = withSv.length > 1 ? i / (withSv.length - 1) : 0;
    const color = `rgb(${Math.round(40 + 200 * f)},60,${Math.round(240 - 200 * f)})`;
    return `<polyline fill="none" stroke="${color}" stroke-width="1.2" points="${pts}"><title>${r.layer} (t=${r.t})</title></polyline>`;
  });
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="18" font-size="13">${esc(title)}</text>`,
    `<line x1="${m.l}" x2="${W - m.r}" y1="${y(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<text x="4" y="${y(1) + 4}">1.0</text>`,
    `<text x="4" y="${m.t + 4}">${hi.toPrecision(6)}</text>`,
    `<text x="4" y="${H - m.b + 4}">${lo.toPrecision(6)}</text>`,
    `<text x="${m.l}" y="${H - 10}">direction (sorted by singular value); first layer blue, last red</text>`,
    ...lines,
    '</svg>',
  ].join('\n');
}
