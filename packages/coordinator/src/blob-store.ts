import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isSha256 } from '@mmgrid/core';
import { BadRequestError, BlobNotFoundError } from './errors.js';
import { limitExceeded } from './limits.js';

export interface BlobStat {
  readonly sha256: string;
  readonly size: number;
}

export interface PutBlobResult {
  readonly stat: BlobStat;
  /** The store already held these bytes; nothing new was kept. */
  readonly deduplicated: boolean;
}

/**
 * Where blobs live. Content-addressed: a blob's name is the SHA-256 of its bytes, so the same
 * bytes are stored once. Every write is verified against the declared hash and size.
 */
export interface BlobStore {
  stat(sha256: string): Promise<BlobStat | undefined>;
  put(declared: BlobStat, chunks: AsyncIterable<Uint8Array>): Promise<PutBlobResult>;
  /** Streams the bytes from `offset`. Throws BlobNotFoundError when absent. */
  read(sha256: string, offset?: number): Promise<AsyncIterable<Buffer>>;
  /** Up to `bytes` bytes from the start (for media detection). */
  readHead(sha256: string, bytes: number): Promise<Buffer>;
  /**
   * The local file that holds (or would hold) the blob, for stores that keep blobs as files;
   * stores that do not, omit this. Does not check the blob is present; undefined for a string
   * that is not a SHA-256.
   */
  localPath?(sha256: string): string | undefined;
}

/** The default BlobStore: files under one folder, `<dir>/<sha[0:2]>/<sha>`. */
/** An upload being written is flushed to disk in the background every this many bytes. */
const FLUSH_EVERY_BYTES = 16 * 1024 * 1024;

export class FsBlobStore implements BlobStore {
  private readonly tmpDir: string;

  constructor(
    private readonly dir: string,
    private readonly maxBlobBytes: number,
  ) {
    this.tmpDir = path.join(dir, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
  }

  localPath(sha256: string): string | undefined {
    return isSha256(sha256) ? path.join(this.dir, sha256.slice(0, 2), sha256) : undefined;
  }

  private pathOf(sha256: string): string {
    if (!isSha256(sha256)) throw new BadRequestError(`"${sha256}" is not a SHA-256 (64 lower-case hex characters)`);
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  async stat(sha256: string): Promise<BlobStat | undefined> {
    try {
      const s = await stat(this.pathOf(sha256));
      return { sha256, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async put(declared: BlobStat, chunks: AsyncIterable<Uint8Array>): Promise<PutBlobResult> {
    const finalPath = this.pathOf(declared.sha256);
    if (declared.size > this.maxBlobBytes) {
      throw limitExceeded('maxBlobBytes', declared.size, this.maxBlobBytes, `the blob has ${declared.size} bytes`, 'bytes');
    }
    const tmpPath = path.join(this.tmpDir, `${declared.sha256}.${randomBytes(6).toString('hex')}`);
    const size = declared.size;
    const file = await open(tmpPath, 'w');
    // The bytes must be on disk before the upload is acknowledged. Flushing them as they come
    // (one flush at a time, in the background, every FLUSH_EVERY_BYTES) overlaps the disk with
    // the network, so the final sync has only the tail left to write.
    let flushing: Promise<void> | undefined;
    let unflushed = 0;
    try {
      for await (const chunk of verifiedChunks(declared, chunks)) {
        await file.write(chunk);
        unflushed += chunk.byteLength;
        if (unflushed >= FLUSH_EVERY_BYTES && !flushing) {
          unflushed = 0;
          flushing = file.datasync().finally(() => (flushing = undefined));
        }
      }
      await flushing;
      await file.sync();
    } catch (err) {
      await flushing?.catch(() => undefined);
      await file.close();
      await rm(tmpPath, { force: true });
      throw err;
    }
    await file.close();
    if (await this.stat(declared.sha256)) {
      await rm(tmpPath, { force: true });
      return { stat: { sha256: declared.sha256, size }, deduplicated: true };
    }
    await mkdir(path.dirname(finalPath), { recursive: true });
    await rename(tmpPath, finalPath);
    return { stat: { sha256: declared.sha256, size }, deduplicated: false };
  }

  async read(sha256: string, offset = 0): Promise<AsyncIterable<Buffer>> {
    const found = await this.stat(sha256);
    if (!found) throw new BlobNotFoundError(sha256);
    if (offset < 0 || offset > found.size) throw new BadRequestError(`offset ${offset} is outside blob ${sha256} of ${found.size} bytes`);
    return createReadStream(this.pathOf(sha256), { start: offset, highWaterMark: 256 * 1024 });
  }

  async readHead(sha256: string, bytes: number): Promise<Buffer> {
    const found = await this.stat(sha256);
    if (!found) throw new BlobNotFoundError(sha256);
    const file = await open(this.pathOf(sha256), 'r');
    try {
      const buffer = Buffer.alloc(Math.min(bytes, found.size));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  }
}

/**
 * `chunks`, passed through while they are counted and hashed: throws BadRequestError as soon
 * as more than the declared size arrives, and after the last chunk when the size or the
 * SHA-256 is not the declared one (so a consumer must not make the bytes visible before the
 * iteration has ended without an error).
 */
export async function* verifiedChunks(declared: BlobStat, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.byteLength;
    if (size > declared.size) {
      throw new BadRequestError(`blob ${declared.sha256}: received more than the declared ${declared.size} bytes`);
    }
    hash.update(chunk);
    yield chunk;
  }
  if (size !== declared.size) {
    throw new BadRequestError(`blob ${declared.sha256}: received ${size} bytes, declared ${declared.size}`);
  }
  const actual = hash.digest('hex');
  if (actual !== declared.sha256) {
    throw new BadRequestError(`blob hash mismatch: the bytes received hash to ${actual}, not the declared ${declared.sha256}`);
  }
}
