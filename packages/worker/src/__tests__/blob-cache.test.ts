import { createHash } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobClient, resolveConnection } from '@mmgrid/client';
import type { BlobRef } from '@mmgrid/core';
import { BlobServiceService, type BlobServiceServer, type GetBlobRequest, type GetBlobResponse } from '@mmgrid/proto';
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

  it('hashes a file found on disk before its first use, and fetches again one whose bytes are not its hash', async () => {
    const damaged: string[] = [];
    const first = new BlobCache(dir, net);
    await first.get(a.ref);
    await first.get(b.ref);
    // Same size, other bytes, left by a previous run (a disk error, a process writing into it).
    const file = first.pathOf(a.ref.sha256);
    await chmod(file, 0o644);
    await writeFile(file, Buffer.alloc(100, 'x'));
    const second = new BlobCache(dir, net, { onCorrupt: (sha, why) => damaged.push(`${sha}: ${why}`) });
    expect(await readFile(await second.get(a.ref))).toEqual(a.bytes);
    expect(await readFile(await second.get(b.ref))).toEqual(b.bytes);
    expect(net.downloads).toEqual([a.ref.sha256, b.ref.sha256, a.ref.sha256]);
    expect(damaged).toEqual([expect.stringMatching(new RegExp(`^${a.ref.sha256}: its file .* \\(100 bytes\\) hashes to ${createHash('sha256').update(Buffer.alloc(100, 'x')).digest('hex')}$`))]);
    expect(second.size).toBe(200);
  });

  it('fetches again a cached blob whose file changed since it was checked, and keeps its files read-only', async () => {
    const cache = new BlobCache(dir, net);
    const file = await cache.get(a.ref);
    expect((await stat(file)).mode & 0o777).toBe(0o444);
    await cache.get(a.ref);
    expect(net.downloads).toHaveLength(1);
    await chmod(file, 0o644);
    await writeFile(file, Buffer.alloc(100, 'y'));
    expect(await readFile(await cache.get(a.ref))).toEqual(a.bytes);
    expect(net.downloads).toHaveLength(2);
    // A shorter file is caught the same way.
    await chmod(file, 0o644);
    await writeFile(file, 'a');
    expect(await readFile(await cache.get(a.ref))).toEqual(a.bytes);
    expect(net.downloads).toHaveLength(3);
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

/**
 * A coordinator's BlobService that serves the wrong bytes (a protocol-level fake, on port 0):
 * the real BlobClient must refuse them, and the cache must report a retryable failure.
 */
describe('BlobCache with a BlobService that serves the wrong bytes', () => {
  let dir: string;
  let server: Server;
  let client: BlobClient;
  let serve: (sha256: string) => Buffer[];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-cache-grpc-'));
    server = new Server();
    const impl: Pick<BlobServiceServer, 'getBlob'> = {
      getBlob: (call: ServerWritableStream<GetBlobRequest, GetBlobResponse>) => {
        const chunks = serve(call.request.sha256);
        const size = chunks.reduce((n, c) => n + c.length, 0);
        call.write({ part: { $case: 'info', info: { sha256: call.request.sha256, size, mediaType: '', name: '' } } });
        for (const chunk of chunks) call.write({ part: { $case: 'chunk', chunk } });
        call.end();
      },
    };
    server.addService(BlobServiceService, impl);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    client = new BlobClient(resolveConnection({ address: `127.0.0.1:${port}` }));
  });

  afterEach(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  async function failure(cache: BlobCache, ref: BlobRef): Promise<TaskFailedError> {
    const err = await cache.get(ref).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof TaskFailedError)) throw new Error(`expected a TaskFailedError, got ${String(err)}`);
    return err;
  }

  it('refuses bytes that do not hash to the blob, as a retryable missing input, and keeps nothing', async () => {
    const good = blob('g');
    serve = () => [Buffer.alloc(100, 'h')];
    const cache = new BlobCache(dir, client);
    const err = await failure(cache, good.ref);
    expect([err.code, err.retryable]).toEqual(['INPUT_MISSING', true]);
    expect(err.message).toMatch(new RegExp(`could not fetch input g: downloaded blob ${good.ref.sha256} hashes to [0-9a-f]{64} \\(100 of 100 bytes\\); refusing it`));
    expect(cache.size).toBe(0);
    await expect(access(cache.pathOf(good.ref.sha256))).rejects.toThrow();
    // Served right the next time, it is taken.
    serve = () => [good.bytes];
    expect(await readFile(await cache.get(good.ref))).toEqual(good.bytes);
  });

  it('cuts off a server that sends more than the blob declared', async () => {
    const good = blob('k');
    serve = () => [good.bytes, Buffer.alloc(64 * 1024, 'z'), Buffer.alloc(64 * 1024, 'z')];
    const cache = new BlobCache(dir, client);
    const err = await failure(cache, good.ref);
    expect([err.code, err.retryable]).toEqual(['INPUT_MISSING', true]);
    expect(err.message).toContain(`sent more than the 100 bytes of blob ${good.ref.sha256}; refusing it`);
    await mkdir(dir, { recursive: true });
    expect(cache.size).toBe(0);
  });
});
