/**
 * The model zoo: trained weights shipped with the package, named `zoo:<preset>` wherever a
 * model path is accepted. Each entry is a folder `zoo/<preset>/` holding the weights as
 * safetensors (timm / torchvision names, loaded into the preset by name) and a
 * `manifest.json` ({@link ZooManifest}) that says how they were made and what they score.
 * The weights' sha256 is checked on every load: a changed or truncated file is a DataError,
 * never a silently different model.
 *
 * Entries are either classifier backbones (`loadZooModel`) or diffusion U-Nets (loaded by
 * `loadDiffusionModel`); a diffusion entry's manifest also names the (t, block) whose
 * linear probe its `acc1` reports, which `probe` uses by default.
 *
 * The zoo folder is `zoo/` at the package root, or `$DENOISEREP_ZOO` when set.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSafetensors, encodeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../onnx/tensor.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic-write.js';
import { DataError, UsageError } from '../util/errors.js';
import type { Model } from '../onnx/ir.js';
import type { ParamStore } from './params.js';
import { getPreset, isDiffusionPreset, type PresetOptions, presetNames } from './registry.js';
import type { ModelDef } from './types.js';
import { assignWeights, initialWeights, modelWithWeights } from './weights.js';

/** The prefix of a zoo reference. */
export const ZOO_PREFIX = 'zoo:';

/** Format tag and version of a manifest. */
export const ZOO_FORMAT = 'denoiserep-zoo';
export const ZOO_VERSION = 1;

/** What `zoo/<preset>/manifest.json` holds. */
export interface ZooManifest {
  format: typeof ZOO_FORMAT;
  version: typeof ZOO_VERSION;
  /** The preset the weights belong to (also the entry's folder name). */
  preset: string;
  /** Options of the preset (classes, BNNeck), if not its defaults. */
  presetOptions?: PresetOptions;
  /** The weights file, relative to the entry folder (a plain file name). */
  weights: string;
  /** sha256 of the weights file, lowercase hex. */
  sha256: string;
  /** Size of the weights file in bytes. */
  bytes: number;
  /** The exact command(s) that trained the weights, in order. */
  commands: string[];
  /** The project commit the commands ran at. */
  commit: string;
  /** The data the weights were trained and scored on, in words. */
  data: string;
  /** acc@1 in percent on the test set named by `data`. */
  acc1: number;
  /** Number of test images behind acc1 (10,000 for the full Fashion-MNIST test set). */
  testImages: number;
  /** Free-form notes (wall time, machine). */
  notes?: string;
  /**
   * Diffusion entries only (required there): the noise step and block whose linear probe
   * scores `acc1`, the default of `probe zoo:<preset>`.
   */
  probe?: ZooProbeCell;
}

/** The feature cell a diffusion entry's `acc1` was measured at. */
export interface ZooProbeCell {
  t: number;
  block: string;
}

/**
 * The zoo folder: `$DENOISEREP_ZOO`, else `zoo/` at the package root (src/models and
 * dist/models both sit two levels below it).
 */
export function zooRoot(): string {
  return process.env.DENOISEREP_ZOO || fileURLToPath(new URL('../../zoo/', import.meta.url));
}

/** Whether a model argument is a zoo reference (`zoo:<preset>`). */
export function isZooRef(arg: string): boolean {
  return arg.startsWith(ZOO_PREFIX);
}

/**
 * The presets that have a zoo entry (a folder with a manifest) under `root`.
 * @param kind - 'backbone' lists only classifier presets, 'diffusion' only U-Nets
 */
export function zooEntries(
  root = zooRoot(),
  kind: 'all' | 'backbone' | 'diffusion' = 'all',
): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, e.name, 'manifest.json')))
    .map((e) => e.name)
    .filter((n) => kind === 'all' || isDiffusionPreset(n) === (kind === 'diffusion'))
    .sort();
}

function entryName(ref: string): string {
  const name = isZooRef(ref) ? ref.slice(ZOO_PREFIX.length) : ref;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
    throw new UsageError(
      `'${ref}' is not a zoo reference (zoo:<preset>, e.g. zoo:vit-tiny-fmnist)`,
    );
  return name;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sha256 of a file, lowercase hex. */
export function sha256File(path: string): string {
  return sha256Hex(readFileSync(path));
}

function checkManifest(m: unknown, file: string, name: string): ZooManifest {
  const bad = (what: string) => new DataError(`${file}: ${what}`);
  if (typeof m !== 'object' || m === null) throw bad('not a JSON object');
  const o = m as Record<string, unknown>;
  if (o.format !== ZOO_FORMAT)
    throw bad(`format is '${String(o.format)}', expected '${ZOO_FORMAT}'`);
  if (o.version !== ZOO_VERSION)
    throw bad(`version ${String(o.version)} is not supported (expected ${ZOO_VERSION})`);
  if (o.preset !== name)
    throw bad(`preset '${String(o.preset)}' does not match the entry name '${name}'`);
  const diffusion = isDiffusionPreset(name);
  if (!presetNames().includes(name) && !diffusion)
    throw bad(`preset '${name}' is unknown to this version`);
  if (
    typeof o.weights !== 'string' ||
    o.weights !== basename(o.weights) ||
    o.weights.startsWith('.')
  )
    throw bad(`weights must be a file name in the entry folder, got '${String(o.weights)}'`);
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256))
    throw bad('sha256 must be 64 lowercase hex digits');
  if (!Number.isInteger(o.bytes) || (o.bytes as number) <= 0)
    throw bad('bytes must be a positive integer');
  if (
    !Array.isArray(o.commands) ||
    o.commands.length === 0 ||
    o.commands.some((c) => typeof c !== 'string' || !c)
  )
    throw bad('commands must be a non-empty list of the exact commands run');
  for (const k of ['commit', 'data'] as const)
    if (typeof o[k] !== 'string' || !o[k]) throw bad(`${k} must be a non-empty string`);
  if (typeof o.acc1 !== 'number' || !(o.acc1 >= 0 && o.acc1 <= 100))
    throw bad(`acc1 must be a percentage in [0, 100], got ${String(o.acc1)}`);
  if (!Number.isInteger(o.testImages) || (o.testImages as number) <= 0)
    throw bad('testImages must be a positive integer');
  if (!diffusion && o.probe !== undefined) throw bad('probe is for diffusion entries only');
  const p = o.probe as Record<string, unknown> | null | undefined;
  const cell =
    typeof p === 'object' &&
    p !== null &&
    Number.isInteger(p.t) &&
    (p.t as number) >= 0 &&
    typeof p.block === 'string' &&
    p.block !== '';
  if (diffusion && !cell)
    throw bad(
      'a diffusion entry needs probe: { t, block }, the cell whose linear probe acc1 reports',
    );
  return o as unknown as ZooManifest;
}

/**
 * Reads and checks an entry's manifest (not yet the weights).
 * @param ref - `zoo:<preset>` or the preset name
 * @param root - the zoo folder (default {@link zooRoot})
 * @example readZooManifest('zoo:vit-tiny-fmnist').acc1 // 89.53
 */
export function readZooManifest(ref: string, root = zooRoot()): ZooManifest {
  const name = entryName(ref);
  const file = join(root, name, 'manifest.json');
  if (!existsSync(file)) {
    const have = zooEntries(root);
    throw new UsageError(
      `no zoo entry '${name}' in ${root} (${have.length ? `entries: ${have.join(', ')}` : 'the zoo is empty'})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return checkManifest(parsed, file, name);
}

/** A loaded zoo entry. */
export interface ZooModel {
  /** `zoo:<preset>`, for messages. */
  source: string;
  manifest: ZooManifest;
  def: ModelDef;
  values: ParamStore;
  /** The evaluation graph (outputs `logits` and `feature`) with the weights. */
  model: Model;
  /** Path of the checked weights file. */
  weightsPath: string;
}

/**
 * Loads a zoo entry: the manifest, the weights (their sha256 checked against the
 * manifest's), the preset with those weights.
 * @param ref - `zoo:<preset>`
 * @param root - the zoo folder (default {@link zooRoot})
 * @throws UsageError for an unknown entry; DataError for a bad manifest or weights that do
 *   not match it
 * @example
 * const { model, manifest } = loadZooModel('zoo:resnet-tiny-fmnist');
 */
export function loadZooModel(ref: string, root = zooRoot()): ZooModel {
  const entry = entryName(ref);
  if (isDiffusionPreset(entry))
    throw new UsageError(
      `zoo:${entry} is a diffusion U-Net, not a classifier backbone: use it with \`sample\` or \`probe\``,
    );
  const { manifest, weightsPath, tensors } = checkedZooWeights(ref, root);
  const name = manifest.preset;
  const def = getPreset(name, manifest.presetOptions ?? {});
  const store = initialWeights(def);
  assignWeights(store, tensors, weightsPath);
  return {
    source: `${ZOO_PREFIX}${name}`,
    manifest,
    def,
    values: store,
    model: modelWithWeights(def, store),
    weightsPath,
  };
}

/**
 * An entry's manifest and its weights, read once: the bytes' sha256 checked against the
 * manifest's, then decoded (any kind of entry; the caller matches the tensors to its model).
 * @param ref - `zoo:<preset>`
 * @param root - the zoo folder (default {@link zooRoot})
 * @throws UsageError for an unknown entry; DataError for a bad manifest or weights that do
 *   not match it
 */
export function checkedZooWeights(
  ref: string,
  root = zooRoot(),
): { manifest: ZooManifest; weightsPath: string; tensors: Map<string, Tensor> } {
  const manifest = readZooManifest(ref, root);
  const name = manifest.preset;
  const weightsPath = join(root, name, manifest.weights);
  if (!existsSync(weightsPath))
    throw new DataError(
      `${weightsPath}: the weights of zoo:${name} are missing (the manifest names them)`,
    );
  const bytes = readFileSync(weightsPath);
  const actual = sha256Hex(bytes);
  if (actual !== manifest.sha256) {
    throw new DataError(
      `${weightsPath}: sha256 ${actual} does not match the manifest's ${manifest.sha256} (file changed or damaged)`,
    );
  }
  return { manifest, weightsPath, tensors: decodeSafetensors(bytes, weightsPath).tensors };
}

/**
 * Writes a zoo entry: `<root>/<preset>/model.safetensors` and its manifest with the sha256
 * and size computed from the written file. Use it to add trained weights to the zoo.
 * @param opts.root - the zoo folder (default {@link zooRoot})
 * @param opts.def - the preset (its name is the entry's name)
 * @param opts.values - the trained parameters and buffers
 * @param opts.acc1 - acc@1 in percent, measured on `testImages` images of `data`
 * @returns the manifest written
 * @example
 * writeZooEntry({ def, values, commands: ['denoiserep pretrain ...'], commit, data: 'fashion-mnist', acc1: 93.11, testImages: 10000 });
 */
export function writeZooEntry(opts: {
  root?: string;
  /** The preset (a classifier's or a U-Net's definition: only its name is used). */
  def: Pick<ModelDef, 'name'>;
  presetOptions?: PresetOptions;
  values: ParamStore;
  commands: string[];
  commit: string;
  data: string;
  acc1: number;
  testImages: number;
  notes?: string;
  probe?: ZooProbeCell;
}): ZooManifest {
  const root = opts.root ?? zooRoot();
  if (isDiffusionPreset(opts.def.name) !== (opts.probe !== undefined))
    throw new UsageError(
      `zoo entry ${opts.def.name}: probe { t, block } is required for a diffusion U-Net and only there`,
    );
  const dir = join(root, opts.def.name);
  const weights = 'model.safetensors';
  // Encoded in memory: the manifest is made and checked from these bytes before either
  // file is written, so a refused entry leaves nothing behind.
  const bytes = encodeSafetensors(opts.values.toTensors(), {
    preset: opts.def.name,
    format: ZOO_FORMAT,
  });
  const manifest: ZooManifest = {
    format: ZOO_FORMAT,
    version: ZOO_VERSION,
    preset: opts.def.name,
    ...(opts.presetOptions ? { presetOptions: opts.presetOptions } : {}),
    weights,
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    commands: opts.commands,
    commit: opts.commit,
    data: opts.data,
    acc1: opts.acc1,
    testImages: opts.testImages,
    ...(opts.notes ? { notes: opts.notes } : {}),
    ...(opts.probe ? { probe: { t: opts.probe.t, block: opts.probe.block } } : {}),
  };
  checkManifest(manifest, join(dir, 'manifest.json'), opts.def.name);
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, weights), bytes);
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  return manifest;
}
