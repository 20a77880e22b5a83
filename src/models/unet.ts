import { silu } from '../layers/activation.js';
import { attention } from '../layers/attention.js';
import type { LayerContext } from '../layers/context.js';
import { conv2d } from '../layers/conv.js';
import { dropout } from '../layers/dropout.js';
import { groupNorm } from '../layers/group-norm.js';
import { linear } from '../layers/linear.js';
import { upsampleNearest } from '../layers/resample.js';
import { sinusoidalEmbedding } from '../layers/time-embed.js';
import type { Value } from '../onnx/builder.js';

/** Settings of a DDPM-style U-Net (Ho et al. 2020, scaled to small images). */
export interface UNetConfig {
  imageSize: number;
  channels: number;
  /** Channel width per resolution level: level l works at imageSize / 2^l. */
  widths: number[];
  /** Residual blocks per level on the way down; the way up has as many, each fed one skip. */
  numRes: number;
  /** Levels (0-based) with a self-attention block after each residual block. */
  attnLevels: number[];
  /** GroupNorm groups (dividing every width). */
  groups: number;
  /** Attention heads. */
  heads: number;
  /** Width of the sinusoidal time embedding; its MLP widens it to 4x. */
  timeDim: number;
  /** Dropout inside residual blocks (DDPM: 0.1 on CIFAR-10). */
  dropout: number;
}

/** Names of the blocks whose outputs can be tapped for features, in forward order. */
export function unetBlocks(cfg: UNetConfig): string[] {
  const down = cfg.widths.map((_, l) => `down.${l}`);
  const up = cfg.widths.map((_, l) => `up.${l}`).reverse();
  return [...down, 'mid', ...up];
}

/**
 * A denoising U-Net definition: `build` maps a noised image x_t [N, C, H, W] and its
 * timestep index [N] to the predicted noise, and exposes the output of every block
 * ({@link unetBlocks}) for feature extraction.
 */
export interface UNetDef {
  name: string;
  family: 'unet';
  /** [C, H, W] */
  inputShape: [number, number, number];
  config: UNetConfig;
  /** Tappable blocks in forward order: `down.{l}`, `mid`, `up.{l}`. */
  blocks: string[];
  build(ctx: LayerContext, x: Value, t: Value): { eps: Value; taps: Map<string, Value> };
}

/**
 * A DDPM U-Net (the architecture of Ho et al.'s `Model`, scaled to 28x28).
 *
 * - Time: sinusoidal(t) -> `time_embed.0` Linear -> SiLU -> `time_embed.2` Linear (4x
 *   timeDim); each residual block adds a projection of SiLU(temb) after its first conv.
 * - Residual block (`res.{i}`): GroupNorm, SiLU, 3x3 conv, + time projection, GroupNorm,
 *   SiLU, dropout, 3x3 conv, plus the input (through a 1x1 `skip` conv when widths differ).
 * - Down path: `conv_in`, then per level `numRes` residual blocks (each followed by
 *   self-attention on levels in `attnLevels`), each output kept as a skip; between levels
 *   a stride-2 3x3 conv (`downsample`) that also changes the width.
 * - `mid`: residual block, self-attention, residual block.
 * - Up path: per level, from the lowest, `numRes` residual blocks each fed the
 *   concatenation with one skip (last in, first out), then a 3x3 conv to the next width
 *   and nearest 2x upsampling (`upsample`; DDPM convolves after upsampling, which costs
 *   4x more here, where the budget is an hour of CPU).
 * - Output: GroupNorm, SiLU, `conv_out` to the image channels.
 *
 * Taps: `down.{l}` is the last block output of level l before downsampling, `mid` the
 * middle block's output, `up.{l}` the last block output of up level l before upsampling.
 */
export function unet(cfg: UNetConfig, name = 'unet'): UNetDef {
  const levels = cfg.widths.length;
  if (levels < 1) throw new RangeError('unet: needs at least one level');
  if (cfg.imageSize % 2 ** (levels - 1) !== 0) {
    throw new RangeError(
      `unet: image size ${cfg.imageSize} is not divisible by 2^${levels - 1} (${levels} levels)`,
    );
  }
  if (!Number.isInteger(cfg.numRes) || cfg.numRes < 1) {
    throw new RangeError(`unet: numRes must be an integer >= 1, got ${cfg.numRes}`);
  }
  const blocks = unetBlocks(cfg);
  return {
    name,
    family: 'unet',
    inputShape: [cfg.channels, cfg.imageSize, cfg.imageSize],
    config: { ...cfg, widths: [...cfg.widths], attnLevels: [...cfg.attnLevels] },
    blocks,
    build(ctx: LayerContext, x: Value, t: Value) {
      const { b } = ctx;
      const tDim = cfg.timeDim * 4;
      const temb = b.scope('time_embed', () => {
        const s = sinusoidalEmbedding(b, t, cfg.timeDim);
        return linear(ctx, silu(b, linear(ctx, s, '0', cfg.timeDim, tDim)), '2', tDim, tDim);
      });
      const tAct = silu(b, temb);
      const taps = new Map<string, Value>();
      const block = { ctx, cfg, tAct, tDim };
      const w0 = cfg.widths[0]!;
      let h = conv2d(ctx, x, 'conv_in', cfg.channels, w0, 3, { padding: 1 });
      let width = w0;
      const skips: { v: Value; width: number }[] = [];
      for (let l = 0; l < levels; l++) {
        const wl = cfg.widths[l]!;
        h = b.scope('down', () =>
          b.scope(l, () => {
            let y = h;
            for (let i = 0; i < cfg.numRes; i++) {
              y = b.scope('res', () => b.scope(i, () => resBlock(block, y, width, wl)));
              width = wl;
              if (cfg.attnLevels.includes(l)) {
                y = b.scope('attn', () => b.scope(i, () => attnBlock(block, y, wl)));
              }
              skips.push({ v: y, width: wl });
            }
            taps.set(`down.${l}`, y);
            if (l < levels - 1) {
              const next = cfg.widths[l + 1]!;
              y = conv2d(ctx, y, 'downsample', wl, next, 3, { stride: 2, padding: 1 });
              width = next;
            }
            return y;
          }),
        );
      }
      h = b.scope('mid', () => {
        let y = b.scope('res', () => b.scope(0, () => resBlock(block, h, width, width)));
        y = b.scope('attn', () => attnBlock(block, y, width));
        return b.scope('res', () => b.scope(1, () => resBlock(block, y, width, width)));
      });
      taps.set('mid', h);
      for (let l = levels - 1; l >= 0; l--) {
        const wl = cfg.widths[l]!;
        h = b.scope('up', () =>
          b.scope(l, () => {
            let y = h;
            for (let i = 0; i < cfg.numRes; i++) {
              const skip = skips.pop()!;
              const cat = b.concat([y, skip.v], 1);
              y = b.scope('res', () =>
                b.scope(i, () => resBlock(block, cat, width + skip.width, wl)),
              );
              width = wl;
              if (cfg.attnLevels.includes(l)) {
                y = b.scope('attn', () => b.scope(i, () => attnBlock(block, y, wl)));
              }
            }
            taps.set(`up.${l}`, y);
            if (l > 0) {
              const next = cfg.widths[l - 1]!;
              // The width changes before the upsampling, at a quarter of the positions.
              y = b.scope('upsample', () =>
                upsampleNearest(ctx, conv2d(ctx, y, 'conv', wl, next, 3, { padding: 1 }), 2),
              );
              width = next;
            }
            return y;
          }),
        );
      }
      h = silu(b, groupNorm(ctx, h, 'norm_out', width, cfg.groups));
      const eps = conv2d(ctx, h, 'conv_out', width, cfg.channels, 3, { padding: 1 });
      return { eps, taps };
    },
  };
}

interface BlockEnv {
  ctx: LayerContext;
  cfg: UNetConfig;
  /** SiLU of the time embedding [N, tDim]. */
  tAct: Value;
  tDim: number;
}

function resBlock(env: BlockEnv, x: Value, inC: number, outC: number): Value {
  const { ctx, cfg } = env;
  const { b } = ctx;
  let h = silu(b, groupNorm(ctx, x, 'norm1', inC, cfg.groups));
  h = conv2d(ctx, h, 'conv1', inC, outC, 3, { padding: 1 });
  const tp = linear(ctx, env.tAct, 'temb_proj', env.tDim, outC);
  h = b.add(h, b.unsqueeze(tp, [2, 3]));
  h = silu(b, groupNorm(ctx, h, 'norm2', outC, cfg.groups));
  h = dropout(ctx, h, 'dropout', cfg.dropout);
  h = conv2d(ctx, h, 'conv2', outC, outC, 3, { padding: 1 });
  const skip = inC === outC ? x : conv2d(ctx, x, 'skip', inC, outC, 1);
  return b.add(skip, h);
}

/** Self-attention over the H·W positions (DDPM's AttnBlock, multi-head), residual. */
function attnBlock(env: BlockEnv, x: Value, c: number): Value {
  const { ctx, cfg } = env;
  const { b } = ctx;
  const [, , hh, ww] = x.shape as [unknown, number, number, number];
  const n = groupNorm(ctx, x, 'norm', c, cfg.groups);
  const tokens = b.transpose(b.reshape(n, [-1, c, hh * ww]), [0, 2, 1]);
  const out = attention(ctx, tokens, c, cfg.heads);
  return b.add(x, b.reshape(b.transpose(out, [0, 2, 1]), [-1, c, hh, ww]));
}
