/**
 * What a study writes for people: `table.md` (the results with their intervals and what
 * they say) and `report.html` (one self-contained page: the same tables, accuracy against
 * noise scale, per-corruption accuracy with intervals, training curves and per-layer
 * spectra, all as inline SVG; nothing is fetched).
 */
import type { DeltaSummary, MetricSummary, StudySummaryArms, SweepSummary } from './study-stats.js';
import { esc, lineChart, PALETTE } from './svg-chart.js';

/** Compute spent by one arm for one seed (what the training loop records). */
export interface ArmCompute {
  backboneSteps: number;
  denoiserSteps: number;
  lrFirst: number | null;
  lrLast: number | null;
  dataOrderSeed: number | null;
  /** Hash of every backbone step's learning rate and feeds (equal for matched runs). */
  backboneTrace?: string | null;
}

/** One training curve: loss per optimiser step (downsampled), by phase. */
export interface TrainingCurve {
  arm: string;
  seed: number;
  points: { step: number; loss: number; phase: string }[];
}

/** Per-layer spectrum of the fused closed-form map at one noise scale. */
export interface LayerSpectrum {
  layer: string;
  t: number;
  /** Eigenvalues of the layer's input covariance, ascending (variance per direction). */
  variances: number[];
  /** Gain of c3·I − c1·Wd along each eigenvector (same order). */
  gains: number[];
}

/** The results of a study (results.json). */
export interface StudyResults {
  format: 'denoiserep-study';
  version: 1;
  id: string;
  created: string;
  /** Wall time of the run that finished the study (cached arms cost nothing). */
  wallSeconds: number;
  command: string;
  backbone: { ref: string; preset: string; manifestAcc1?: number; sha256?: string };
  data: {
    source: string;
    trainImages: number;
    momentImages: number;
    testImages: number;
    corruptedImages: number;
    queries: number;
  };
  settings: Record<string, unknown>;
  seeds: number[];
  corruptions: string[];
  severities: number[];
  noiseScales: number[];
  arms: StudySummaryArms;
  compute: Record<string, (ArmCompute | null)[]>;
  sweep: SweepSummary[];
  curves: TrainingCurve[];
  spectra: { noiseScale: number; layers: LayerSpectrum[] }[];
  verify: { arm: string; seed: number; ok: boolean; maxRelError: number }[];
  conclusions: string[];
}

const f2 = (v: number) => v.toFixed(2);
const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}`;

/** `89.53 [89.0, 90.1]` */
export function fmtMetric(m: MetricSummary): string {
  return m.ci ? `${f2(m.mean)} [${f2(m.ci[0])}, ${f2(m.ci[1])}]` : f2(m.mean);
}

/** `+0.12 [−0.30, +0.54] no detectable difference` */
export function fmtDelta(d: DeltaSummary): string {
  const ci = d.ci ? ` [${signed(d.ci[0])}, ${signed(d.ci[1])}]` : '';
  return `${signed(d.mean)}${ci} ${d.verdict}`;
}

/**
 * Plain sentences on what the intervals say: each arm against its control, and whether any
 * noise level helps beyond its interval.
 */
export function conclusions(r: Pick<StudyResults, 'arms' | 'sweep' | 'seeds'>): string[] {
  const out: string[] = [];
  for (const a of Object.values(r.arms)) {
    const d = a.deltaVsControl;
    if (!d) continue;
    out.push(
      `${a.name} against ${a.control}: acc@1 ${fmtDelta(d.acc1)}; mAP ${fmtDelta(d.map)}; corrupted acc@1 ${fmtDelta(d.corruptedAcc1)} (points).`,
    );
  }
  if (r.sweep.length) {
    const clean = r.sweep.filter((p) => p.deltaVsBaseline.acc1.verdict === 'higher');
    const corr = r.sweep.filter((p) => p.deltaVsBaseline.corruptedAcc1.verdict === 'higher');
    const worse = r.sweep.filter(
      (p) =>
        p.deltaVsBaseline.acc1.verdict === 'lower' ||
        p.deltaVsBaseline.corruptedAcc1.verdict === 'lower',
    );
    const scales = (ps: SweepSummary[]) => ps.map((p) => `${p.noiseScale}x`).join(', ');
    out.push(
      clean.length
        ? `Closed-form label-free DenoiseRep raises clean acc@1 beyond its interval at noise scale ${scales(clean)}.`
        : `No noise level of closed-form label-free DenoiseRep (${scales(r.sweep)} the paper's betas) raises clean acc@1 beyond its interval.`,
      corr.length
        ? `It raises corrupted acc@1 beyond its interval at noise scale ${scales(corr)}.`
        : 'No noise level raises corrupted acc@1 beyond its interval.',
    );
    if (worse.length)
      out.push(`Accuracy falls beyond its interval at noise scale ${scales(worse)}.`);
  }
  return out;
}

function computeText(c: ArmCompute | null | undefined): string {
  if (!c) return '—';
  const lr =
    c.lrFirst === null
      ? ''
      : `, lr ${c.lrFirst.toExponential(1)}→${(c.lrLast ?? 0).toExponential(1)}`;
  return `${c.backboneSteps} / ${c.denoiserSteps}${lr}`;
}

/**
 * The study's results as Markdown.
 * @param r - the results
 */
export function studyMarkdown(r: StudyResults): string {
  const arms = Object.values(r.arms);
  const lines = [
    `# DenoiseRep study ${r.id}`,
    '',
    `Backbone ${r.backbone.ref} (${r.backbone.preset}${r.backbone.manifestAcc1 !== undefined ? `, manifest acc@1 ${f2(r.backbone.manifestAcc1)}%` : ''}); seeds ${r.seeds.join(', ')}; ${r.data.testImages} clean test images, ${r.data.corruptedImages} per corrupted split (${r.corruptions.length} corruptions × severities ${r.severities.join(', ')}); ${r.data.trainImages} training images (${r.data.momentImages} for the closed form's moments). Wall time ${(r.wallSeconds / 60).toFixed(1)} min.`,
    '',
    '## Arms (percent, 95% intervals)',
    '',
    '| arm | control | acc@1 | mAP | corrupted acc@1 | mCE | Δ acc@1 vs control | Δ mAP vs control | Δ corrupted vs control | backbone / denoiser steps |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...arms.map((a) => {
      const d = a.deltaVsControl;
      return `| ${a.name} | ${a.control ?? '—'} | ${fmtMetric(a.acc1)} | ${fmtMetric(a.map)} | ${fmtMetric(a.corruptedAcc1)} | ${a.mCE ? fmtMetric(a.mCE) : '—'} | ${d ? fmtDelta(d.acc1) : '—'} | ${d ? fmtDelta(d.map) : '—'} | ${d ? fmtDelta(d.corruptedAcc1) : '—'} | ${computeText(r.compute[a.name]?.[0])} |`;
    }),
    '',
  ];
  const withDelta = arms.filter((a) => a.deltaVsControl);
  if (withDelta.length) {
    lines.push(
      '## Per seed: arm − control on the same images (paired bootstrap; exact McNemar p for acc@1)',
      '',
      '| arm | seed | Δ acc@1 | McNemar p | Δ mAP | Δ corrupted acc@1 |',
      '| --- | --- | --- | --- | --- | --- |',
      ...withDelta.flatMap((a) => {
        const d = a.deltaVsControl!;
        return d.acc1.perSeed.map((p, k) => {
          const cell = (x: { mean: number; ci: [number, number] }) =>
            `${signed(x.mean)} [${signed(x.ci[0])}, ${signed(x.ci[1])}]`;
          return `| ${a.name} | ${p.seed} | ${cell(p)} | ${p.mcnemarP === undefined ? '—' : p.mcnemarP < 1e-3 ? p.mcnemarP.toExponential(2) : p.mcnemarP.toPrecision(3)} | ${cell(d.map.perSeed[k]!)} | ${cell(d.corruptedAcc1.perSeed[k]!)} |`;
        });
      }),
      '',
    );
  }
  if (r.sweep.length) {
    lines.push(
      '## Noise-scale sweep (closed-form label-free, against the baseline)',
      '',
      '| noise scale | acc@1 | Δ acc@1 | corrupted acc@1 | Δ corrupted acc@1 |',
      '| --- | --- | --- | --- | --- |',
      ...r.sweep.map(
        (p) =>
          `| ${p.noiseScale} | ${fmtMetric(p.acc1)} | ${fmtDelta(p.deltaVsBaseline.acc1)} | ${fmtMetric(p.corruptedAcc1)} | ${fmtDelta(p.deltaVsBaseline.corruptedAcc1)} |`,
      ),
      '',
    );
  }
  if (r.corruptions.length) {
    lines.push(
      '## Accuracy per corruption (mean over severities)',
      '',
      `| corruption | ${arms.map((a) => a.name).join(' | ')} |`,
      `| --- | ${arms.map(() => '---').join(' | ')} |`,
      ...r.corruptions.map(
        (c) => `| ${c} | ${arms.map((a) => fmtMetric(a.perCorruption[c]!)).join(' | ')} |`,
      ),
      '',
    );
  }
  lines.push('## What the intervals say', '', ...r.conclusions.map((c) => `- ${c}`), '');
  lines.push(
    'Intervals: a trained arm with several seeds gets a t-interval across seeds (training randomness on this test set); a deterministic arm (baseline, closed form) or a single seed gets a bootstrap over test images (queries for mAP). Differences are paired: per seed a bootstrap over the same images, across seeds a t-interval of the per-seed differences. "no detectable difference" means the 95% interval contains 0. mCE: corruption errors summed over severities relative to the baseline (100 = as robust).',
  );
  return lines.join('\n');
}

function deltaCell(d: DeltaSummary | undefined): string {
  if (!d) return '<td>—</td>';
  const cls = d.verdict === 'higher' ? 'up' : d.verdict === 'lower' ? 'down' : 'flat';
  return `<td class="${cls}">${esc(fmtDelta(d))}</td>`;
}

/**
 * The study's report: one self-contained HTML page (inline CSS and SVG, no script, no
 * external reference).
 * @param r - the results
 */
export function studyReportHtml(r: StudyResults): string {
  const arms = Object.values(r.arms);
  const colorOf = new Map(arms.map((a, i) => [a.name, PALETTE[i % PALETTE.length]!]));
  const sections: string[] = [];

  sections.push(
    `<h2>What the intervals say</h2><ul>${r.conclusions.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>`,
  );

  sections.push(
    `<h2>Arms</h2><table><tr><th>arm</th><th>control</th><th>acc@1 (%)</th><th>mAP (%)</th><th>corrupted acc@1 (%)</th><th>mCE (%)</th><th>Δ acc@1 vs control</th><th>Δ mAP vs control</th><th>Δ corrupted vs control</th><th>backbone / denoiser steps</th></tr>${arms
      .map(
        (a) =>
          `<tr><td>${esc(a.name)}</td><td>${esc(a.control ?? '—')}</td><td>${esc(fmtMetric(a.acc1))}</td><td>${esc(fmtMetric(a.map))}</td><td>${esc(fmtMetric(a.corruptedAcc1))}</td><td>${a.mCE ? esc(fmtMetric(a.mCE)) : '—'}</td>${deltaCell(a.deltaVsControl?.acc1)}${deltaCell(a.deltaVsControl?.map)}${deltaCell(a.deltaVsControl?.corruptedAcc1)}<td>${esc(computeText(r.compute[a.name]?.[0]))}</td></tr>`,
      )
      .join('')}</table>`,
  );

  if (r.sweep.length) {
    const base = r.arms.baseline;
    const hLines = (m: 'acc1' | 'corruptedAcc1') =>
      base ? [{ y: base[m].mean, label: `baseline ${f2(base[m].mean)}` }] : [];
    const pts = (m: 'acc1' | 'corruptedAcc1') =>
      r.sweep.map((p) => ({
        x: p.noiseScale,
        y: p[m].mean,
        ...(p[m].ci ? { lo: p[m].ci[0], hi: p[m].ci[1] } : {}),
      }));
    sections.push(
      '<h2>Accuracy against noise scale</h2><p>Closed-form label-free DenoiseRep with the betas multiplied by the noise scale (1 = the paper’s), fused; bars are 95% bootstrap intervals over test images.</p>',
      lineChart({
        title: 'Clean acc@1 against noise scale',
        xLabel: 'noise scale (× the paper’s betas)',
        yLabel: 'acc@1 (%)',
        logX: true,
        series: [{ name: 'closed form, clean', points: pts('acc1') }],
        hLines: hLines('acc1'),
      }),
      lineChart({
        title: 'Difference from the baseline against noise scale (paired over images)',
        xLabel: 'noise scale (× the paper’s betas)',
        yLabel: 'Δ acc@1 (points)',
        logX: true,
        series: (['acc1', 'corruptedAcc1'] as const).map((m, i) => ({
          name: m === 'acc1' ? 'clean' : 'corrupted',
          color: PALETTE[i],
          points: r.sweep.map((p) => {
            const d = p.deltaVsBaseline[m];
            return { x: p.noiseScale, y: d.mean, ...(d.ci ? { lo: d.ci[0], hi: d.ci[1] } : {}) };
          }),
        })),
        hLines: [{ y: 0, label: 'no difference' }],
      }),
      lineChart({
        title: 'Corrupted acc@1 against noise scale',
        xLabel: 'noise scale (× the paper’s betas)',
        yLabel: 'corrupted acc@1 (%)',
        logX: true,
        series: [
          { name: 'closed form, corrupted', points: pts('corruptedAcc1'), color: PALETTE[1] },
        ],
        hLines: hLines('corruptedAcc1'),
      }),
      `<table><tr><th>noise scale</th><th>acc@1</th><th>Δ acc@1 vs baseline</th><th>corrupted acc@1</th><th>Δ corrupted vs baseline</th></tr>${r.sweep
        .map(
          (p) =>
            `<tr><td>${p.noiseScale}</td><td>${esc(fmtMetric(p.acc1))}</td>${deltaCell(p.deltaVsBaseline.acc1)}<td>${esc(fmtMetric(p.corruptedAcc1))}</td>${deltaCell(p.deltaVsBaseline.corruptedAcc1)}</tr>`,
        )
        .join('')}</table>`,
    );
  }

  if (r.corruptions.length) {
    // Arms side by side at each corruption, offset so the bars do not overlap.
    const k = arms.length;
    const series = arms.map((a, i) => ({
      name: a.name,
      color: colorOf.get(a.name),
      line: false,
      points: r.corruptions.map((c, ci) => {
        const m = a.perCorruption[c]!;
        return {
          x: ci + (k > 1 ? (i - (k - 1) / 2) * (0.6 / k) : 0),
          y: m.mean,
          ...(m.ci ? { lo: m.ci[0], hi: m.ci[1] } : {}),
        };
      }),
    }));
    sections.push(
      '<h2>Accuracy per corruption</h2><p>Mean over severities; bars are 95% intervals.</p>',
      lineChart({
        title: 'acc@1 per corruption',
        xLabel: 'corruption',
        yLabel: 'acc@1 (%)',
        categories: r.corruptions,
        series,
        height: 400,
      }),
      `<table><tr><th>corruption</th>${arms.map((a) => `<th>${esc(a.name)}</th>`).join('')}</tr>${r.corruptions
        .map(
          (c) =>
            `<tr><td>${esc(c)}</td>${arms.map((a) => `<td>${esc(fmtMetric(a.perCorruption[c]!))}</td>`).join('')}</tr>`,
        )
        .join('')}</table>`,
    );
  }

  if (r.curves.length) {
    const byArm = new Map<string, TrainingCurve[]>();
    for (const c of r.curves) byArm.set(c.arm, [...(byArm.get(c.arm) ?? []), c]);
    sections.push('<h2>Training curves</h2><p>Loss per optimiser step (each seed one line).</p>');
    for (const [arm, curves] of byArm) {
      const phases = [...new Set(curves.flatMap((c) => c.points.map((p) => p.phase)))];
      sections.push(
        lineChart({
          title: `${arm}: training loss`,
          xLabel: 'optimiser step',
          yLabel: 'loss',
          height: 300,
          series: curves.flatMap((c) =>
            phases.map((ph, j) => ({
              name: `seed ${c.seed}${phases.length > 1 ? `, ${ph}` : ''}`,
              points: c.points.filter((p) => p.phase === ph).map((p) => ({ x: p.step, y: p.loss })),
              markers: false,
              width: 1.2,
              color: PALETTE[(j * 3 + c.seed) % PALETTE.length],
            })),
          ),
        }),
      );
    }
  }

  if (r.spectra.length) {
    sections.push(
      '<h2>Per-layer spectra</h2><p>For each layer, the gain of the fused denoising map c3·I − c1·Wd (closed form) along each eigenvector of the layer’s input covariance, against that direction’s variance (directions with no variance drawn at 1e-7 of the largest). Directions with variance near or below the forward noise s2² are shrunk; the rest pass almost unchanged. One panel per noise scale; layers from the first (blue) to the last (red).</p>',
    );
    for (const s of r.spectra) {
      const n = s.layers.length;
      const maxVariance = Math.max(1e-30, ...s.layers.flatMap((l) => l.variances));
      sections.push(
        lineChart({
          title: `noise scale ${s.noiseScale}: gain of c3·I − c1·Wd per direction`,
          xLabel: 'variance of the direction (eigenvalue of the input covariance)',
          yLabel: 'gain',
          logX: true,
          legend: n <= 12,
          height: 300,
          series: s.layers.map((l, i) => {
            const f = n > 1 ? i / (n - 1) : 0;
            // Directions of (numerically) no variance are drawn at 1e-7 of the largest.
            const floor = 1e-7 * maxVariance;
            return {
              name: `${l.layer} (t=${l.t})`,
              markers: false,
              width: 1,
              color: `rgb(${Math.round(40 + 200 * f)},60,${Math.round(240 - 200 * f)})`,
              points: l.variances.map((v, k) => ({ x: Math.max(v, floor), y: l.gains[k]! })),
            };
          }),
        }),
      );
    }
  }

  if (r.verify.length) {
    const bad = r.verify.filter((v) => !v.ok);
    sections.push(
      `<h2>Fusion checks</h2><p>${r.verify.length} fused models checked against their unfused form with explicit denoising steps: ${bad.length ? `${bad.length} FAILED (${bad.map((v) => `${v.arm} seed ${v.seed}`).join(', ')})` : 'all identical in topology and within tolerance'}; largest relative error ${Math.max(...r.verify.map((v) => v.maxRelError)).toExponential(1)}.</p>`,
    );
  }

  sections.push(
    `<h2>Settings</h2><pre>${esc(JSON.stringify({ command: r.command, backbone: r.backbone, data: r.data, seeds: r.seeds, noiseScales: r.noiseScales, severities: r.severities, settings: r.settings }, null, 2))}</pre>`,
  );

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DenoiseRep study ${esc(r.id)}</title>
<style>
body{font-family:sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:12px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f4f4f4}
td.up{background:#e6f4e6}td.down{background:#f8e4e4}td.flat{color:#555}
svg{display:block;margin:12px 0}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
</style></head><body>
<h1>DenoiseRep study ${esc(r.id)}</h1>
<p>Backbone <b>${esc(r.backbone.ref)}</b> (${esc(r.backbone.preset)}${r.backbone.manifestAcc1 !== undefined ? `, manifest acc@1 ${f2(r.backbone.manifestAcc1)}%` : ''}). Seeds ${esc(r.seeds.join(', '))}. ${r.data.testImages} clean test images, ${r.data.corruptedImages} per corrupted split, ${r.data.trainImages} training images, ${r.data.momentImages} of them for the closed form’s moments (${esc(r.data.source)}). Wall time ${(r.wallSeconds / 60).toFixed(1)} min. Created ${esc(r.created)}.</p>
${sections.join('\n')}
</body></html>
`;
}
