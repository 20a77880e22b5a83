import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Model } from '../onnx/ir.js';
import { encodeModel } from '../onnx/serialize.js';
import { Session, type SessionOptions } from './session.js';

interface Entry {
  session: Session;
  /** Leases not yet given back. */
  users: number;
  /** Order of last use (larger is more recent). */
  used: number;
}

/** Hits, misses and size of a {@link SessionCache}. */
export interface SessionCacheStats {
  hits: number;
  misses: number;
  /** Sessions held now (idle and leased). */
  size: number;
}

/**
 * ONNX Runtime sessions shared by content. A model is keyed by the SHA-256 of its
 * serialised bytes together with the options that change how it runs (threads,
 * optimisation level), so the same model loaded again — evaluated, then its features
 * taken, then timed, in one experiment — reuses one compiled session instead of paying
 * for graph optimisation each time. Two models with equal bytes share a session even
 * when they are different objects; a model whose weights changed is a different key.
 *
 * Sessions are leased: {@link acquire} counts a user, {@link give} returns it. Only idle
 * sessions are released when the cache holds more than `capacity`, least recently used
 * first, so a session is never released under a caller.
 *
 * @example
 * const cache = new SessionCache(4);
 * const s = await cache.acquire(model, { threads: 2 });
 * try { await s.run(feeds); } finally { cache.give(s); }
 * await cache.clear();
 */
export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  private readonly keys = new Map<Session, string>();
  private clock = 0;
  private hits = 0;
  private misses = 0;

  /** @param capacity - idle sessions kept beyond those in use (at least 1) */
  constructor(readonly capacity = 4) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new RangeError(`SessionCache capacity must be an integer >= 1, got ${capacity}`);
  }

  /**
   * A session for the model, compiled once per distinct (bytes, threads, optimisation).
   * Give it back with {@link give} when done.
   */
  async acquire(model: Model, opts: SessionOptions = {}): Promise<Session> {
    const bytes = encodeModel(model);
    const threads = opts.threads ?? availableParallelism();
    const key = `${createHash('sha256').update(bytes).digest('hex')}|t${threads}|${opts.optimization ?? 'all'}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      hit.users++;
      hit.used = ++this.clock;
      return hit.session;
    }
    this.misses++;
    const session = await Session.fromEncoded(model, bytes, { ...opts, threads });
    // Another caller may have created the same session while this one was compiling.
    const raced = this.entries.get(key);
    if (raced) {
      await session.release();
      raced.users++;
      raced.used = ++this.clock;
      return raced.session;
    }
    this.entries.set(key, { session, users: 1, used: ++this.clock });
    this.keys.set(session, key);
    await this.evict();
    return session;
  }

  /** Returns a leased session; idle sessions beyond the capacity are then released. */
  async give(session: Session): Promise<void> {
    const key = this.keys.get(session);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (!e || e.users === 0)
      throw new Error('SessionCache.give: this session is not leased from this cache');
    e.users--;
    await this.evict();
  }

  /** Runs `fn` with a leased session and gives it back, also when `fn` throws. */
  async with<T>(model: Model, opts: SessionOptions, fn: (s: Session) => Promise<T>): Promise<T> {
    const s = await this.acquire(model, opts);
    try {
      return await fn(s);
    } finally {
      await this.give(s);
    }
  }

  stats(): SessionCacheStats {
    return { hits: this.hits, misses: this.misses, size: this.entries.size };
  }

  /** Releases every session; fails if one is still leased. */
  async clear(): Promise<void> {
    const busy = [...this.entries.values()].filter((e) => e.users > 0).length;
    if (busy > 0) throw new Error(`SessionCache.clear: ${busy} session(s) still leased`);
    for (const e of this.entries.values()) await e.session.release();
    this.entries.clear();
    this.keys.clear();
  }

  private async evict(): Promise<void> {
    while (this.entries.size > this.capacity) {
      let oldest: [string, Entry] | undefined;
      for (const kv of this.entries) {
        if (kv[1].users === 0 && (!oldest || kv[1].used < oldest[1].used)) oldest = kv;
      }
      if (!oldest) return; // everything is in use; shrink later
      this.entries.delete(oldest[0]);
      this.keys.delete(oldest[1].session);
      await oldest[1].session.release();
    }
  }
}
