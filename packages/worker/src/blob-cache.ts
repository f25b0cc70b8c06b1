import { mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { BlobClient } from '@mmgrid/client';
import { InvalidOptionError, isSha256, type BlobRef } from '@mmgrid/core';
import { TaskFailedError } from './errors.js';
import type { WorkerMetrics } from './metrics.js';

/** The blob transfers the worker needs (a BlobClient, or one that follows reconnections). */
export type BlobClientLike = Pick<BlobClient, 'download' | 'uploadBytes'>;

/** What the cache needs from the network: a hash-checked download into a file. */
export type BlobDownloader = Pick<BlobClient, 'download'>;

export interface BlobCacheOptions {
  /** Bytes of blobs kept before the least recently used ones are removed. @default 10 GiB */
  maxBytes?: number;
  /** Counts look-ups (hit, miss) and tracks the bytes held. @default none */
  metrics?: Pick<WorkerMetrics, 'blobLookup' | 'setBlobCacheBytes'>;
}

/** A blob held for a running task: it stays on disk until released. */
export interface BlobLease {
  readonly path: string;
  /** Lets the blob be evicted again; calling it more than once does nothing. */
  release: () => void;
}

const DEFAULT_MAX_BYTES = 10 * 1024 ** 3;

interface Entry {
  size: number;
  /** Larger is more recent; comparable with file modification times (ms). */
  lastUsed: number;
  /** Leases not yet released. */
  pins: number;
}

interface Fetch {
  done: Promise<void>;
  /** Callers waiting on this download; each gets a pin when it lands. */
  waiters: number;
}

/**
 * Blobs this worker has fetched, kept by hash under one folder, `<dir>/<sha[0:2]>/<sha>`.
 * A blob already held is never downloaded again, and concurrent requests for the same blob
 * share one download (hash-checked by the client before it is kept). The folder is bounded
 * by bytes: adding a blob evicts the least recently used blobs that no running task holds
 * (`acquire`). A blob larger than the bound is still fetched, and is the first to go later.
 * The folder is scanned on first use, so a restarted worker knows what it has.
 */
export class BlobCache {
  private readonly maxBytes: number;
  private readonly metrics: BlobCacheOptions['metrics'];
  private readonly entries = new Map<string, Entry>();
  private readonly fetches = new Map<string, Fetch>();
  /** Blobs being deleted; a new download of one waits for its delete. */
  private readonly removing = new Map<string, Promise<void>>();
  /** Bytes on disk (entries) and promised to downloads in flight. */
  private heldBytes = 0;
  private reservedBytes = 0;
  private clock = 0;
  private scanned: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly client: BlobDownloader,
    options: BlobCacheOptions = {},
  ) {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new InvalidOptionError('maxBytes', 'a whole number of bytes, 0 or more', maxBytes);
    this.maxBytes = maxBytes;
    this.metrics = options.metrics;
  }

  /** Every change of the bytes held goes through here, so the metric follows it. */
  private addHeld(bytes: number): void {
    this.heldBytes += bytes;
    this.metrics?.setBlobCacheBytes(this.heldBytes);
  }

  pathOf(sha256: string): string {
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  /** Bytes of blobs held now. */
  get size(): number {
    return this.heldBytes;
  }

  /**
   * The blob's file, fetched if not held. Not pinned: a later addition may evict it, so a
   * task that reads the file should `acquire` it instead.
   */
  async get(ref: BlobRef): Promise<string> {
    const lease = await this.acquire(ref);
    lease.release();
    return lease.path;
  }

  /** The blob's file, fetched if not held, kept on disk until `release` is called. */
  async acquire(ref: BlobRef): Promise<BlobLease> {
    if (!isSha256(ref.sha256)) throw new TaskFailedError('INPUT_MISSING', `"${ref.sha256}" is not a blob hash`, false);
    await this.scan();
    const sha = ref.sha256;
    const file = this.pathOf(sha);
    // One look-up per call: a hit when the blob was already held, a miss when it had to be
    // fetched (or joined a fetch in flight).
    let missed = false;
    for (;;) {
      const entry = this.entries.get(sha);
      if (entry) {
        entry.pins++;
        if (await this.touch(sha, entry)) {
          if (!missed) this.metrics?.blobLookup('hit');
          return this.leaseOf(file, entry);
        }
        // Removed from disk behind our back: forget it and fetch it again.
        entry.pins--;
        this.forget(sha, entry);
        continue;
      }
      let fetch = this.fetches.get(sha);
      if (!fetch) {
        const started: Fetch = { done: Promise.resolve(), waiters: 0 };
        started.done = this.fetch(sha, ref.size, file, started).finally(() => this.fetches.delete(sha));
        this.fetches.set(sha, started);
        fetch = started;
      }
      fetch.waiters++;
      if (!missed) this.metrics?.blobLookup('miss');
      missed = true;
      try {
        await fetch.done;
      } catch (err) {
        throw new TaskFailedError('INPUT_MISSING', `could not fetch input ${ref.name || sha}: ${err instanceof Error ? err.message : String(err)}`, true, { cause: err });
      }
      // The download landed with a pin for this caller.
      const landed = this.entries.get(sha);
      if (landed) return this.leaseOf(file, landed);
    }
  }

  private leaseOf(file: string, entry: Entry): BlobLease {
    let released = false;
    return {
      path: file,
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
      },
    };
  }

  private async fetch(sha: string, declaredSize: number, file: string, fetch: Fetch): Promise<void> {
    await this.removing.get(sha);
    const reserve = Math.max(0, declaredSize);
    this.reservedBytes += reserve;
    try {
      await this.evict();
      await mkdir(path.dirname(file), { recursive: true });
      await this.client.download(sha, file);
    } finally {
      this.reservedBytes -= reserve;
    }
    const size = (await stat(file)).size;
    const lastUsed = this.tick();
    await utimes(file, new Date(lastUsed), new Date(lastUsed));
    // Pinned for every caller waiting on this download, before anything else can run.
    const entry: Entry = { size, lastUsed, pins: fetch.waiters };
    this.entries.set(sha, entry);
    this.addHeld(size);
    // The blob is in; if the actual size overshot, making room is best effort.
    await this.evict().catch(() => undefined);
  }

  /** Removes unpinned blobs, oversized ones first, then least recently used, until all fits. */
  private async evict(): Promise<void> {
    if (this.heldBytes + this.reservedBytes <= this.maxBytes) return;
    const candidates = [...this.entries].filter(([, e]) => e.pins === 0);
    candidates.sort(([, a], [, b]) => Number(b.size > this.maxBytes) - Number(a.size > this.maxBytes) || a.lastUsed - b.lastUsed);
    const removals: Promise<void>[] = [];
    for (const [sha, entry] of candidates) {
      if (this.heldBytes + this.reservedBytes <= this.maxBytes) break;
      this.forget(sha, entry);
      const removal = rm(this.pathOf(sha), { force: true }).finally(() => {
        if (this.removing.get(sha) === removal) this.removing.delete(sha);
      });
      this.removing.set(sha, removal);
      removals.push(removal);
    }
    await Promise.all(removals);
  }

  private forget(sha: string, entry: Entry): void {
    if (this.entries.get(sha) !== entry) return;
    this.entries.delete(sha);
    this.addHeld(-entry.size);
  }

  /** Marks a use, in memory and on the file (so a restart keeps the order); false if the file is gone. */
  private async touch(sha: string, entry: Entry): Promise<boolean> {
    entry.lastUsed = this.tick();
    const when = new Date(entry.lastUsed);
    try {
      await utimes(this.pathOf(sha), when, when);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /** Strictly increasing, and at least the wall clock (ms). */
  private tick(): number {
    this.clock = Math.max(Date.now(), this.clock + 1);
    return this.clock;
  }

  private scan(): Promise<void> {
    this.scanned ??= this.scanFolder();
    return this.scanned;
  }

  /** Learns the blobs already on disk; removes downloads a previous run left half done. */
  private async scanFolder(): Promise<void> {
    let shards: string[];
    try {
      shards = await readdir(this.dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return;
      throw err;
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      let names: string[];
      try {
        names = await readdir(path.join(this.dir, shard));
      } catch {
        continue;
      }
      for (const name of names) {
        const file = path.join(this.dir, shard, name);
        if (name.endsWith('.part')) {
          await rm(file, { force: true });
          continue;
        }
        if (!isSha256(name) || !name.startsWith(shard) || this.entries.has(name)) continue;
        const info = await stat(file).catch(() => undefined);
        if (!info?.isFile()) continue;
        this.entries.set(name, { size: info.size, lastUsed: info.mtimeMs, pins: 0 });
        this.addHeld(info.size);
        this.clock = Math.max(this.clock, Math.ceil(info.mtimeMs));
      }
    }
  }
}

function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}
