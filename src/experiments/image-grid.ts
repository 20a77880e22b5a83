import sharp from 'sharp';
import { UsageError } from '../util/errors.js';

/**
 * Lays images out as a grid PNG (sharp): `cols` per row (default the ceiling of the square
 * root), `pad` pixels of black between and around them, each image upscaled by `scale`
 * (nearest). Pixels in [0, 1], NCHW with 1 (grey) or 3 (RGB) channels.
 * @param pixels - n images, NCHW
 * @param shape - [C, H, W]
 * @example
 * writeFileAtomic('grid.png', await imageGridPng(px, [1, 28, 28], { cols: 8 }));
 */
export async function imageGridPng(
  pixels: Float32Array,
  shape: [number, number, number],
  opts: { cols?: number; pad?: number; scale?: number } = {},
): Promise<Buffer> {
  const [c, h, w] = shape;
  if (c !== 1 && c !== 3) throw new UsageError(`an image grid needs 1 or 3 channels, got ${c}`);
  const n = pixels.length / (c * h * w);
  if (!Number.isInteger(n) || n < 1) throw new UsageError('an image grid needs at least one image');
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const pad = opts.pad ?? 2;
  const s = opts.scale ?? 1;
  const W = cols * (w * s + pad) + pad;
  const H = rows * (h * s + pad) + pad;
  const out = new Uint8Array(W * H * c);
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * (w * s + pad);
    const y0 = pad + Math.floor(i / cols) * (h * s + pad);
    for (let y = 0; y < h * s; y++) {
      for (let x = 0; x < w * s; x++) {
        for (let k = 0; k < c; k++) {
          const v = pixels[((i * c + k) * h + Math.floor(y / s)) * w + Math.floor(x / s)]!;
          out[((y0 + y) * W + x0 + x) * c + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
      }
    }
  }
  const img = sharp(out, { raw: { width: W, height: H, channels: c } });
  // Grey images stay one-channel PNGs (sharp would otherwise write RGB).
  return (c === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
}
