import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  conclusions,
  fmtDelta,
  type StudyResults,
  studyMarkdown,
  studyReportHtml,
} from '../../src/experiments/study-report.js';
import { type ModelScores, summarizeStudy } from '../../src/experiments/study-stats.js';
import { lineChart, niceTicks } from '../../src/experiments/svg-chart.js';

function scores(right: number, corrupt: number): ModelScores {
  const bits = (k: number) => Uint8Array.from({ length: 200 }, (_, i) => (i < k ? 1 : 0));
  return {
    correct: bits(right),
    queryAP: Float64Array.from([0.5, 0.7, 0.9]),
    corrupted: { 'jpeg/3': bits(corrupt), 'contrast/3': bits(corrupt - 20) },
  };
}

function results(): StudyResults {
  const base = scores(150, 100);
  const summary = summarizeStudy(
    [
      { name: 'baseline', control: null, seedDependent: false, scores: [base, base] },
      {
        name: 'control',
        control: null,
        seedDependent: true,
        scores: [scores(152, 100), scores(150, 101)],
      },
      {
        name: 'label-aug',
        control: 'control',
        seedDependent: true,
        scores: [scores(172, 120), scores(171, 121)],
      },
    ],
    [1, 10, 100].map((k) => ({ noiseScale: k, scores: scores(150 - (k === 100 ? 1 : 0), 100) })),
    { seeds: [0, 1], corruptions: ['jpeg', 'contrast'], severities: [3], resamples: 1000 },
  );
  const r: StudyResults = {
    format: 'denoiserep-study',
    version: 1,
    id: 'test',
    created: '2025-01-01T00:00:00Z',
    wallSeconds: 90,
    command: 'denoiserep study --quick',
    backbone: { ref: 'zoo:vit-tiny-fmnist', preset: 'vit-tiny-fmnist', manifestAcc1: 89.53 },
    data: {
      source: 'embedded',
      trainImages: 1000,
      momentImages: 1000,
      testImages: 200,
      corruptedImages: 200,
      queries: 3,
    },
    settings: {},
    seeds: [0, 1],
    corruptions: ['jpeg', 'contrast'],
    severities: [3],
    noiseScales: [1, 10, 100],
    arms: summary.arms,
    compute: {
      baseline: [null, null],
      control: [
        { backboneSteps: 20, denoiserSteps: 0, lrFirst: 3e-4, lrLast: 0, dataOrderSeed: 0 },
        null,
      ],
      'label-aug': [
        { backboneSteps: 20, denoiserSteps: 20, lrFirst: 3e-4, lrLast: 0, dataOrderSeed: 0 },
        null,
      ],
    },
    sweep: summary.sweep,
    curves: [
      {
        arm: 'label-aug',
        seed: 0,
        points: [
          { step: 1, loss: 2, phase: 'denoisers' },
          { step: 2, loss: 1.5, phase: 'backbone' },
          { step: 3, loss: 1.2, phase: 'backbone' },
        ],
      },
    ],
    spectra: [
      {
        noiseScale: 1,
        layers: [
          { layer: 'blocks.0.mlp.fc1', t: 2, variances: [1e-4, 1e-2, 1], gains: [0.5, 0.99, 1] },
        ],
      },
    ],
    verify: [{ arm: 'label-aug', seed: 0, ok: true, maxRelError: 2e-6 }],
    conclusions: [],
  };
  r.conclusions = conclusions(r);
  return r;
}

describe('study report', () => {
  const r = results();

  test('conclusions say plainly what each interval shows', () => {
    assert.equal(r.arms['label-aug']!.deltaVsControl!.acc1.verdict, 'higher');
    assert.match(r.conclusions[0]!, /^label-aug against control: acc@1 \+10\.25 \[/);
    assert.match(
      r.conclusions[0]!,
      /acc@1 [^;]* higher; mAP \+0\.00 \[\+0\.00, \+0\.00\] no detectable difference/,
    );
    assert.ok(
      r.conclusions.includes(
        "No noise level of closed-form label-free DenoiseRep (1x, 10x, 100x the paper's betas) raises clean acc@1 beyond its interval.",
      ),
      r.conclusions.join('\n'),
    );
    assert.ok(r.conclusions.includes('No noise level raises corrupted acc@1 beyond its interval.'));
  });

  test('table.md holds every arm, the sweep, the corruptions and the verdicts', () => {
    const md = studyMarkdown(r);
    for (const a of ['baseline', 'control', 'label-aug'])
      assert.match(md, new RegExp(`^\\| ${a} \\|`, 'm'));
    assert.match(md, /^\| 100 \| 74\.50 \[/m);
    assert.match(md, /^\| contrast \| 40\.00 \[/m);
    assert.match(md, /no detectable difference/);
    // Per seed: label-aug gains 20 and 21 images of 200 (+10.00, +10.50); McNemar p = 2·0.5^20.
    assert.match(md, /^\| label-aug \| 0 \| \+10\.00 \[[^|]*\] \| 1\.91e-6 \|/m);
    assert.match(md, /^\| label-aug \| 1 \| \+10\.50 \[[^|]*\] \| 9\.54e-7 \|/m);
    assert.match(md, /\| 20 \/ 20, lr 3\.0e-4→0\.0e\+0 \|/);
  });

  test('report.html is one page with inline SVG charts and nothing to fetch', () => {
    const html = studyReportHtml(r);
    assert.ok(html.startsWith('<!DOCTYPE html>'));
    // Sweep (3), per corruption, one training curve, one spectrum panel.
    assert.equal(html.match(/<svg /g)?.length, 6);
    for (const bad of [
      /<script/i,
      /\bsrc=/i,
      /\bhref=/i,
      /url\(/i,
      /https?:/i,
      /<link/i,
      /@import/i,
    ])
      assert.doesNotMatch(html, bad);
    assert.match(html, /Accuracy against noise scale/);
    assert.match(html, /Per-layer spectra/);
    assert.match(html, /Training curves/);
    assert.match(html, /all identical in topology/);
  });

  test('a delta formats with signs and its verdict', () => {
    assert.equal(
      fmtDelta({
        mean: -0.5,
        ci: [-1, 0.25],
        ciMethod: 'bootstrap-images',
        verdict: 'no detectable difference',
        perSeed: [],
      }),
      '−0.50 [−1.00, +0.25] no detectable difference',
    );
  });
});

describe('svg charts', () => {
  test('round ticks', () => {
    assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(88.3, 90.1), [88.5, 89, 89.5, 90]);
  });

  test('a log axis gets decade ticks; text is escaped', () => {
    const svg = lineChart({
      title: 'a < b & c',
      xLabel: 'x',
      yLabel: 'y',
      logX: true,
      series: [{ name: 's', points: [1, 10, 100].map((x) => ({ x, y: x, lo: x - 1, hi: x + 1 })) }],
    });
    for (const t of ['>1<', '>10<', '>100<']) assert.ok(svg.includes(t), t);
    assert.ok(svg.includes('a &lt; b &amp; c'));
    assert.equal(svg.match(/<circle /g)?.length, 3);
  });
});
