import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobRef } from '@mmgrid/core';
import { BlobCache } from '../blob-cache.js';
import { TaskFailedError } from '../errors.js';

function blob(text: string, size = 100): { ref: BlobRef; bytes: Buffer } {
  const bytes = Buffer.alloc(size, text);
  return { ref: { sha256: createHash('sha256').update(bytes).digest('hex'), size, mediaType: 'application/octet-stream', name: text }, bytes };
}

/** Stands in for the network client: writes the bytes it knows, and counts the downloads. */
class FakeBlobs {
  readonly downloads: string[] = [];
  private readonly bytes = new Map<string, Buffer>();
  /** When set, downloads wait for it. */
  gate: Promise<void> | undefined;

  add(...blobs: { ref: BlobRef; bytes: Buffer }[]): void {
    for (const b of blobs) this.bytes.set(b.ref.sha256, b.bytes);
  }

  async download(sha256: string, file: string): Promise<{ size: number }> {
    this.downloads.push(sha256);
    await this.gate;
    const bytes = this.bytes.get(sha256);
    if (!bytes) throw new Error(`blob ${sha256} not found`);
    await writeFile(file, bytes);
    return { size: bytes.length };
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

describe('BlobCache', () => {
  let dir: string;
  let net: FakeBlobs;
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((t) => blob(t)) as [ReturnType<typeof blob>, ReturnType<typeof blob>, ReturnType<typeof blob>, ReturnType<typeof blob>];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-cache-'));
    net = new FakeBlobs();
    net.add(a, b, c, d);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('downloads a blob once and then serves it from disk', async () => {
    const cache = new BlobCache(dir, net);
    const file = await cache.get(a.ref);
    expect(file).toBe(cache.pathOf(a.ref.sha256));
    expect(await readFile(file)).toEqual(a.bytes);
    expect(await cache.get(a.ref)).toBe(file);
    expect((await cache.acquire(a.ref)).path).toBe(file);
    expect(net.downloads).toEqual([a.ref.sha256]);
    expect(cache.size).toBe(100);
  });

  it('shares one download between concurrent requests', async () => {
    const cache = new BlobCache(dir, net);
    let open: () => void = () => undefined;
    net.gate = new Promise((resolve) => (open = resolve));
    const pending = Promise.all([cache.get(a.ref), cache.get(a.ref), cache.acquire(a.ref)]);
    open();
    const [one, two, lease] = await pending;
    expect(one).toBe(two);
    expect(lease.path).toBe(one);
    expect(net.downloads).toEqual([a.ref.sha256]);
  });

  it('evicts the least recently used blobs when adding one would pass the byte bound', async () => {
    const cache = new BlobCache(dir, net, { maxBytes: 300 });
    await cache.get(a.ref);
    await cache.get(b.ref);
    await cache.get(c.ref);
    await cache.get(a.ref); // a is now more recent than b and c
    await cache.get(d.ref);
    expect(await exists(cache.pathOf(b.ref.sha256))).toBe(false);
    expect(await exists(cache.pathOf(a.ref.sha256))).toBe(true);
    expect(await exists(cache.pathOf(c.ref.sha256))).toBe(true);
    expect(await exists(cache.pathOf(d.ref.sha256))).toBe(true);
    expect(cache.size).toBe(300);

    await cache.get(b.ref); // evicted, so fetched again; c is now the oldest
    expect(await exists(cache.pathOf(c.ref.sha256))).toBe(false);
    expect(net.downloads).toEqual([a, b, c, d, b].map((x) => x.ref.sha256));
  });

  it('never evicts a blob a task holds', async () => {
    const cache = new BlobCache(dir, net, { maxBytes: 200 });
    const held = await cache.acquire(a.ref);
    await cache.get(b.ref);
    await cache.get(c.ref); // b goes, though a is older
    await cache.get(d.ref); // c goes
    expect(await exists(held.path)).toBe(true);
    expect(await exists(cache.pathOf(b.ref.sha256))).toBe(false);
    expect(await exists(cache.pathOf(c.ref.sha256))).toBe(false);

    held.release();
    held.release(); // a second release changes nothing
    await cache.get(b.ref); // a is the oldest and no longer held
    expect(await exists(held.path)).toBe(false);
    expect(await exists(cache.pathOf(d.ref.sha256))).toBe(true);
  });

  it('keeps every blob while all are held, even past the bound', async () => {
    const cache = new BlobCache(dir, net, { maxBytes: 100 });
    const leases = [await cache.acquire(a.ref), await cache.acquire(b.ref)];
    expect(cache.size).toBe(200);
    for (const lease of leases) expect(await exists(lease.path)).toBe(true);
  });

  it('fetches a blob larger than the bound, and evicts it first later', async () => {
    const big = blob('B', 500);
    net.add(big);
    const cache = new BlobCache(dir, net, { maxBytes: 300 });
    await cache.get(a.ref);
    await cache.get(b.ref);
    const file = await cache.get(big.ref);
    expect(await readFile(file)).toEqual(big.bytes);
    await cache.get(c.ref);
    expect(await exists(file)).toBe(false);
    expect(await exists(cache.pathOf(c.ref.sha256))).toBe(true);
  });

  it('knows the blobs a previous run left, in their order of use, and drops half-done downloads', async () => {
    const first = new BlobCache(dir, net);
    await first.get(a.ref);
    await first.get(b.ref);
    await first.get(c.ref);
    await first.get(a.ref);
    const partial = `${first.pathOf(a.ref.sha256)}.1234abcd.part`;
    await writeFile(partial, 'half');

    const second = new BlobCache(dir, net, { maxBytes: 300 });
    expect(await second.get(c.ref)).toBe(first.pathOf(c.ref.sha256));
    expect(net.downloads).toHaveLength(3);
    expect(second.size).toBe(300);
    expect(await exists(partial)).toBe(false);

    await second.get(d.ref); // b is the least recently used
    expect(await exists(second.pathOf(b.ref.sha256))).toBe(false);
    expect(await exists(second.pathOf(a.ref.sha256))).toBe(true);
  });

  it('fetches again a blob removed from disk behind its back', async () => {
    const cache = new BlobCache(dir, net);
    const file = await cache.get(a.ref);
    await rm(file);
    expect(await readFile(await cache.get(a.ref))).toEqual(a.bytes);
    expect(net.downloads).toHaveLength(2);
    expect(cache.size).toBe(100);
  });

  it('reports a failed download as a missing input that may be retried', async () => {
    const cache = new BlobCache(dir, net);
    const missing = blob('z');
    const err = await cache.get(missing.ref).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TaskFailedError);
    if (err instanceof TaskFailedError) {
      expect(err.code).toBe('INPUT_MISSING');
      expect(err.retryable).toBe(true);
    }
    net.add(missing);
    expect(await readFile(await cache.get(missing.ref))).toEqual(missing.bytes);
    const bad = await cache.get({ ...a.ref, sha256: 'nothex' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(bad).toBeInstanceOf(TaskFailedError);
    expect(cache.size).toBe(100);
  });
});
