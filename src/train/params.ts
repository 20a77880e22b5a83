import { UsageError } from '../util/errors.js';

/**
 * Parameters that share optimiser settings and can be frozen together.
 *
 * `lr` is a **multiplier** of the learning rate passed to `step()` (not an absolute rate),
 * so one schedule drives every group: a group with `lr: 0.1` steps at a tenth of the
 * scheduled rate. Weight decay is absolute (AdamW multiplies it by the group's effective
 * rate, as PyTorch does).
 */
export interface ParamGroup {
  /** Group name, unique within an optimiser (used by `setFrozen`). */
  name: string;
  /** Parameter names; each may belong to one group only. */
  params: string[];
  /** Multiplier of the step's learning rate (default 1). */
  lr?: number;
  /** Weight decay of this group (default 0). */
  weightDecay?: number;
  /** A frozen group is skipped by `step()` (no update, no state change) until unfrozen. */
  frozen?: boolean;
}

/**
 * Whether a parameter is exempt from weight decay under {@link defaultDecayGroups}' rule.
 * With `.`-separated name segments, a parameter gets no decay when:
 * - the name is `bias` or ends with `.bias`;
 * - a segment contains `norm` (`norm`, `norm1`, `fc_norm`, `layernorm`) or starts with
 *   `bn` (`bn1`, `bnneck`), or is `bottleneck` (the BNNeck of ReID heads), or the name
 *   contains `downsample.1.` (torchvision ResNet's shortcut BatchNorm). Segments, not
 *   raw substrings, so that a name like `subnet.weight` is not caught by `bn`;
 * - a segment is `pos_embed` or `cls_token`;
 * - the name contains `denoise.embed` (a denoiser's time embedding);
 * - `shape` is given and has at most one dimension (timm's rule: nothing 1-D decays).
 * @param name - parameter name
 * @param shape - its shape, if known
 * @example
 * isNoDecay('blocks.0.norm1.weight'); // true
 * isNoDecay('blocks.0.mlp.fc1.weight'); // false
 */
export function isNoDecay(name: string, shape?: readonly number[]): boolean {
  const segs = name.split('.');
  return (
    name === 'bias' ||
    name.endsWith('.bias') ||
    segs.some(
      (s) =>
        s.includes('norm') ||
        s.startsWith('bn') ||
        s === 'bottleneck' ||
        s === 'pos_embed' ||
        s === 'cls_token',
    ) ||
    name.includes('downsample.1.') ||
    name.includes('denoise.embed') ||
    (shape !== undefined && shape.length <= 1)
  );
}

/**
 * Splits parameter names into a `decay` group (weight decay `weightDecay`) and a
 * `no_decay` group (weight decay 0) by {@link isNoDecay}'s rule; both keep the order of
 * `names`.
 * @param names - trainable parameter names
 * @param weightDecay - decay of the `decay` group (default 0.05, the ViT recipe's)
 * @param shapes - parameter shapes; when given, every parameter of rank <= 1 goes to `no_decay`
 * @example
 * const groups = defaultDecayGroups(store.names(), 0.05);
 * const opt = new AdamW(store, groups);
 */
export function defaultDecayGroups(
  names: string[],
  weightDecay = 0.05,
  shapes?: Map<string, readonly number[]>,
): ParamGroup[] {
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new UsageError(`weight decay must be a finite number >= 0, got ${weightDecay}`);
  }
  const none = (n: string) => isNoDecay(n, shapes?.get(n));
  return [
    { name: 'decay', params: names.filter((n) => !none(n)), weightDecay },
    { name: 'no_decay', params: names.filter(none), weightDecay: 0 },
  ];
}
