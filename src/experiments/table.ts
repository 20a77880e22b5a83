/** One arm's measurements for one seed. */
export interface ArmResult {
  acc1: number;
  mAP: number;
  rank1: number;
  /** Median inference time per image at batch 1 (ms). */
  msPerImage: number;
  params: number;
  flops: number;
}

/** Arms in the paper's table order. */
export const ARMS = [
  'baseline',
  'control',
  'denoiserep~',
  'label-free',
  'label-free-cf',
  'label-aug',
] as const;
export type ArmName = (typeof ARMS)[number];

export interface Summary {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function summarize(xs: number[]): Summary {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  const v = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n };
}

export type SummaryTable = Record<string, Record<keyof ArmResult, Summary>>;

/** Summaries per arm and metric over seeds. */
export function summarizeArms(runs: Record<string, ArmResult>[]): SummaryTable {
  const out: SummaryTable = {};
  const names = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  for (const arm of names) {
    const rs = runs.map((r) => r[arm]).filter((r): r is ArmResult => r !== undefined);
    const keys = Object.keys(rs[0]!) as (keyof ArmResult)[];
    out[arm] = Object.fromEntries(keys.map((k) => [k, summarize(rs.map((r) => r[k]))])) as Record<
      keyof ArmResult,
      Summary
    >;
  }
  return out;
}

const pct = (s: Summary) =>
  s.n > 1
    ? `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}`
    : (100 * s.mean).toFixed(2);

/**
 * The results in the paper's shape: method, acc@1, mAP, Rank-1, inference ms/image,
 * params, FLOPs (percentages; mean ± std over seeds when there are several).
 */
export function markdownTable(table: SummaryTable, seeds: number): string {
  const rows = Object.entries(table).map(
    ([arm, m]) =>
      `| ${arm} | ${pct(m.acc1)} | ${pct(m.mAP)} | ${pct(m.rank1)} | ${m.msPerImage.mean.toFixed(3)} | ${(m.params.mean / 1e6).toFixed(3)}M | ${(m.flops.mean / 1e6).toFixed(2)}M |`,
  );
  return [
    `| method | acc@1 (%) | mAP (%) | Rank-1 (%) | ms/image | params | FLOPs |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `${seeds} seed${seeds > 1 ? 's' : ''}${seeds > 1 ? ', mean ± sample std' : ''}; ms/image: median at batch 1.`,
    ...(table['label-free-cf']
      ? ['label-free-cf: the MSE-optimal label-free denoisers in closed form (beyond the paper).']
      : []),
  ].join('\n');
}
