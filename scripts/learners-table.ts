/**
 * The side-by-side table of representation learners (README, "Diffusion models as
 * representation learners"), assembled from the JSON each command printed: the probes and
 * evaluations that scripts/ddpm-study.sh keeps in runs/ddpm-unet-fmnist/results/, and the
 * results.json of the DenoiseRep studies. Writes <results>/learners.json and
 * <results>/learners.md, and prints the table.
 *
 * Usage:
 *   node --import tsx scripts/learners-table.ts runs/ddpm-unet-fmnist/results \
 *     --study ViT-tiny=runs/study-<id>/results.json \
 *     --study ResNet-tiny=runs/study-<id>/results.json
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/atomic-write.js';

interface Row {
  features: string;
  labels: string;
  acc1: number;
  ci95: [number, number];
  source: string;
}

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { study: { type: 'string', multiple: true } },
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: learners-table.ts <results folder> [--study <name>=<results.json>]...');
  process.exit(1);
}

/** The last line of a command's --json output. */
function lastLine(name: string): Record<string, unknown> | undefined {
  const file = join(dir!, `${name}.json`);
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

const rows: Row[] = [];
const probe = (name: string, features: string, labels: string) => {
  const r = lastLine(name);
  if (!r) return;
  const { t, block } = r as { t: number | null; block: string };
  const cell = t === null ? '' : ` (${block} at t = ${t})`;
  rows.push({
    features: features + cell,
    labels,
    acc1: r.acc1 as number,
    ci95: r.ci95 as [number, number],
    source: `${name}.json`,
  });
};
const evaluation = (name: string, features: string) => {
  const r = lastLine(name);
  if (!r) return;
  rows.push({
    features,
    labels: 'all training images',
    acc1: r.acc1 as number,
    ci95: r.acc1Ci95 as [number, number],
    source: `${name}.json`,
  });
};
probe('pixels', 'raw pixels, linear probe', 'none');
probe('linear', 'DDPM U-Net, mean-pooled, linear probe', 'none');
probe('attention', 'DDPM U-Net, 4x4 grid, attention-pooling head', 'none');
probe('resnet-probe', 'ResNet-tiny penultimate features, linear probe', 'all training images');
evaluation('resnet-eval', 'ResNet-tiny, its own head');
probe('vit-probe', 'ViT-tiny penultimate features, linear probe', 'all training images');
evaluation('vit-eval', 'ViT-tiny, its own head');
for (const spec of o.study ?? []) {
  const [name, file] = spec.split('=') as [string, string | undefined];
  if (!file) throw new Error(`--study ${spec}: expected <name>=<results.json>`);
  const r = JSON.parse(readFileSync(file, 'utf8')) as {
    arms: Record<string, { acc1: { mean: number; ci: [number, number] | null } }>;
  };
  for (const arm of ['label-free-cf', 'label-free', 'label-aug']) {
    const a = r.arms[arm];
    if (!a?.acc1.ci) continue;
    rows.push({
      features: `${name} + DenoiseRep ${arm}`,
      labels: 'all training images',
      acc1: a.acc1.mean,
      ci95: a.acc1.ci,
      source: file,
    });
  }
}
if (!rows.length) {
  console.error(`${dir}: no results found (run scripts/ddpm-study.sh first)`);
  process.exit(1);
}
const f = (x: number) => x.toFixed(2);
const md = [
  '| features and head | labels used to learn the features | acc@1 (%), 95% interval |',
  '| --- | --- | --- |',
  ...rows.map(
    (r) => `| ${r.features} | ${r.labels} | ${f(r.acc1)} [${f(r.ci95[0])}, ${f(r.ci95[1])}] |`,
  ),
].join('\n');
writeJsonAtomic(join(dir, 'learners.json'), { rows });
writeFileAtomic(join(dir, 'learners.md'), `${md}\n`);
console.log(md);
