/**
 * Seeded random number generation. Every random draw in the project (initialisers,
 * shuffling, augmentation, diffusion noise) goes through an {@link Rng} so that runs
 * repeat exactly for a given seed.
 *
 * The generator is xoshiro128** (32-bit state words, fast in JavaScript without BigInt),
 * seeded through splitmix32 so that nearby seeds give unrelated streams.
 *
 * @example
 * const rng = new Rng(42);
 * const x = rng.normal();          // one N(0, 1) draw
 * const child = rng.fork('noise'); // an independent stream named 'noise'
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  /** @param seed - any finite number; non-integers are hashed by their bits. */
  constructor(seed: number) {
    let x = hashSeed(seed);
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly random unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Standard normal draw (Box-Muller; the second value of each pair is kept). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer uniformly drawn from [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0)
      throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  /** Fills `out` with N(mean, std^2) draws. */
  fillNormal<A extends Float32Array | Float64Array>(out: A, mean = 0, std = 1): A {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with U[lo, hi) draws. */
  fillUniform<A extends Float32Array | Float64Array>(out: A, lo: number, hi: number): A {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }

  /**
   * An independent generator derived from this one's seed state and a label, without
   * advancing this generator. Use it to give each consumer (data order, noise, dropout)
   * its own stream so that adding draws in one does not shift the others.
   */
  fork(label: string | number): Rng {
    let h = 0x811c9dc5;
    const s = `${label}`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    return new Rng((this.s0 ^ h ^ rotl(this.s1, 13) ^ rotl(this.s2, 7) ^ this.s3) >>> 0);
  }

  /** The generator's full state, for checkpoints. */
  state(): [number, number, number, number, number | null] {
    return [this.s0, this.s1, this.s2, this.s3, this.spareNormal];
  }

  /** Restores a state taken by {@link Rng.state}. */
  setState(st: readonly [number, number, number, number, number | null]): void {
    [this.s0, this.s1, this.s2, this.s3, this.spareNormal] = st;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function hashSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be finite, got ${seed}`);
  if (Number.isInteger(seed) && Math.abs(seed) < 2 ** 31) return seed | 0;
  const f = new Float64Array([seed]);
  const u = new Uint32Array(f.buffer);
  return (u[0]! ^ Math.imul(u[1]!, 0x9e3779b1)) | 0;
}
