import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
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
  /** Told when a held blob's file no longer has its hash (it is then removed and fetched again). @default none */
  onCorrupt?: (sha256: string, why: string) => void;
}

/** A blob held for a running task: it stays on disk until released. */
export interface BlobLease {
  readonly path: string;
  /** Lets the blob be evicted again; calling it more than once does nothing. */
  release: () => void;
}

const DEFAULT_MAX_BYTES = 10 * 1024 ** 3;

/** What a file looked like when its hash was last known good: a change means hashing it again. */
interface Stamp {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

interface Entry {
  size: number;
  /** Set once the file's bytes were hashed (or downloaded hash-checked) as they are now. */
  verified: Stamp | undefined;
  /** A hash check in flight, shared by concurrent look-ups. */
  checking?: Promise<'ok' | 'gone' | 'corrupt'> | undefined;
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
 *
 * No file is used without a known-good hash: a download is hash-checked by the client before
 * it lands; a file found on disk at start is hashed on its first use; and on every later use
 * the file's inode, size and modification time are compared with those recorded when its hash
 * was last checked, and any change means hashing it again. A file whose bytes no longer match
 * its name (a disk error, a process that wrote into it) is removed and fetched again, and
 * `onCorrupt` is told. Cached files are made read-only (0444), so a task handler that writes
 * to its input fails instead of spoiling the cache. (A writer that restores the modification
 * time, or writes between the check and the read, is not caught: that takes a process with
 * the worker's own rights, which could do anything else too.)
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
    this.onCorrupt = options.onCorrupt;
  }

  private readonly onCorrupt: BlobCacheOptions['onCorrupt'];

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
        const state = await this.check(sha, entry);
        if (state === 'ok' && (await this.touch(sha, entry))) {
          if (!missed) this.metrics?.blobLookup('hit');
          return this.leaseOf(file, entry);
        }
        // Removed from disk behind our back, or its bytes changed: forget it and fetch it again.
        entry.pins--;
        this.forget(sha, entry);
        if (state === 'corrupt') await this.remove(sha);
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
      // Never more than the blob's declared size: a server sending more is cut off.
      await this.client.download(sha, file, declaredSize > 0 ? { maxBytes: declaredSize } : {});
    } finally {
      this.reservedBytes -= reserve;
    }
    // The client checked the hash on the way in: what is on disk now is known good.
    await chmod(file, 0o444);
    const lastUsed = this.tick();
    await utimes(file, new Date(lastUsed), new Date(lastUsed));
    const info = await stat(file);
    // Pinned for every caller waiting on this download, before anything else can run.
    const entry: Entry = { size: info.size, verified: stampOf(info), lastUsed, pins: fetch.waiters };
    this.entries.set(sha, entry);
    this.addHeld(info.size);
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
      removals.push(this.remove(sha));
    }
    await Promise.all(removals);
  }

  /** Deletes a blob's file (a download of it waits for this). */
  private remove(sha: string): Promise<void> {
    const removal = rm(this.pathOf(sha), { force: true }).finally(() => {
      if (this.removing.get(sha) === removal) this.removing.delete(sha);
    });
    this.removing.set(sha, removal);
    return removal;
  }

  /** Whether the file still holds the blob's bytes: hashed again unless unchanged since its last check. */
  private check(sha: string, entry: Entry): Promise<'ok' | 'gone' | 'corrupt'> {
    entry.checking ??= this.checkFile(sha, entry).finally(() => (entry.checking = undefined));
    return entry.checking;
  }

  private async checkFile(sha: string, entry: Entry): Promise<'ok' | 'gone' | 'corrupt'> {
    const file = this.pathOf(sha);
    let info: Stats;
    try {
      info = await stat(file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return 'gone';
      throw err;
    }
    const now = stampOf(info);
    const was = entry.verified;
    if (was && was.ino === now.ino && was.size === now.size && was.mtimeMs === now.mtimeMs) return 'ok';
    const actual = await hashFile(file).catch((err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (actual === undefined) return 'gone';
    if (actual !== sha) {
      this.onCorrupt?.(sha, `its file ${file} (${info.size} bytes) hashes to ${actual}`);
      return 'corrupt';
    }
    entry.verified = now;
    if (info.size !== entry.size) {
      this.addHeld(info.size - entry.size);
      entry.size = info.size;
    }
    return 'ok';
  }

  private forget(sha: string, entry: Entry): void {
    if (this.entries.get(sha) !== entry) return;
    this.entries.delete(sha);
    this.addHeld(-entry.size);
  }

  /**
   * Marks a use, in memory and on the file (so a restart keeps the order); false if the file is
   * gone. The new modification time becomes part of the file's known-good stamp.
   */
  private async touch(sha: string, entry: Entry): Promise<boolean> {
    entry.lastUsed = this.tick();
    const when = new Date(entry.lastUsed);
    try {
      const file = this.pathOf(sha);
      const before = entry.verified;
      await utimes(file, when, when);
      const info = await stat(file);
      if (before && before.ino === info.ino && before.size === info.size) entry.verified = stampOf(info);
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
        // Found, not fetched: hashed on its first use.
        this.entries.set(name, { size: info.size, verified: undefined, lastUsed: info.mtimeMs, pins: 0 });
        this.addHeld(info.size);
        this.clock = Math.max(this.clock, Math.ceil(info.mtimeMs));
      }
    }
  }
}

function stampOf(info: Stats): Stamp {
  return { ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
}

/** A file's SHA-256 (hex), streamed. */
async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

function errnoOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}
