import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { BLOB_CHUNK_BYTES, type BlobRef } from '@mmgrid/core';
import { BlobServiceClient, type GetBlobResponse, type PutBlobRequest, type PutBlobResponse } from '@mmgrid/proto';
import type { ResolvedConnection } from './connection.js';
import { MmgridClientError, toClientError } from './errors.js';

export { BLOB_CHUNK_BYTES };

export interface BlobClientOptions {
  /** Bytes per upload message. @default BLOB_CHUNK_BYTES (measured: docs/benchmarks.md) */
  readonly chunkBytes?: number;
}

export interface UploadResult {
  readonly blob: BlobRef;
  /** The coordinator already held these bytes, so none were sent. */
  readonly skipped: boolean;
  /** The bytes were sent, and the coordinator found it already held them (kept once). */
  readonly deduplicated: boolean;
}

/**
 * Called as bytes go (upload) or come (download): after each chunk, and once at the end with
 * `doneBytes === totalBytes` when the transfer completes.
 */
export type ProgressCallback = (doneBytes: number, totalBytes: number) => void;

/** Content-addressed uploads and downloads; hashes are checked on both ends. */
export class BlobClient {
  private readonly client: BlobServiceClient;
  private readonly chunkBytes: number;

  constructor(
    private readonly conn: ResolvedConnection,
    options: BlobClientOptions = {},
  ) {
    this.client = new BlobServiceClient(conn.address, conn.credentials, conn.channelOptions);
    this.chunkBytes = options.chunkBytes ?? BLOB_CHUNK_BYTES;
  }

  /** SHA-256 and size of a file, streamed. */
  static async hashFile(file: string): Promise<{ sha256: string; size: number }> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { sha256: hash.digest('hex'), size };
  }

  /** Which of these blobs the coordinator already holds. */
  async has(sha256s: readonly string[]): Promise<Set<string>> {
    return new Promise((resolve, reject) => {
      this.client.hasBlobs({ sha256: [...sha256s] }, this.conn.metadata(), (err, res) => {
        if (err) reject(toClientError(err, this.conn));
        else resolve(new Set(res.present));
      });
    });
  }

  /** Uploads a file unless the coordinator already has its bytes. */
  async uploadFile(file: string, opts: { name?: string; mediaType?: string; onProgress?: ProgressCallback } = {}): Promise<UploadResult> {
    const { sha256, size } = await BlobClient.hashFile(file);
    const name = opts.name ?? path.basename(file);
    const mediaType = opts.mediaType ?? '';
    if ((await this.has([sha256])).has(sha256)) {
      opts.onProgress?.(size, size);
      return { blob: { sha256, size, mediaType, name }, skipped: true, deduplicated: true };
    }
    const chunks = createReadStream(file, { highWaterMark: this.chunkBytes }) as AsyncIterable<Buffer>;
    const res = await this.put({ sha256, size, name, mediaType }, chunks, opts.onProgress);
    return { blob: refOf(res, { sha256, size, name, mediaType }), skipped: false, deduplicated: res.deduplicated };
  }

  /** Uploads bytes held in memory (outputs such as thumbnails). */
  async uploadBytes(bytes: Uint8Array, opts: { name: string; mediaType: string; onProgress?: ProgressCallback }): Promise<UploadResult> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const size = bytes.byteLength;
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < size; at += this.chunkBytes) chunks.push(bytes.subarray(at, Math.min(size, at + this.chunkBytes)));
    const res = await this.put({ sha256, size, name: opts.name, mediaType: opts.mediaType }, chunks, opts.onProgress);
    return { blob: refOf(res, { sha256, size, name: opts.name, mediaType: opts.mediaType }), skipped: false, deduplicated: res.deduplicated };
  }

  private put(header: BlobRef, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, onProgress?: ProgressCallback): Promise<PutBlobResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let onSettled: () => void = () => undefined;
      const settledSignal = new Promise<void>((r) => (onSettled = r));
      const call = this.client.putBlob(this.conn.metadata(), (err, res) => {
        settled = true;
        onSettled();
        if (err) reject(toClientError(err, this.conn));
        else resolve(res);
      });
      const send = async (): Promise<void> => {
        // A refused upload never drains: stop waiting (and reading the file) once it is settled.
        const write = async (message: PutBlobRequest): Promise<void> => {
          if (!call.write(message)) await Promise.race([once(call, 'drain'), settledSignal]);
        };
        await write({ part: { $case: 'header', header } });
        let done = 0;
        for await (const chunk of chunks) {
          if (settled) return;
          await write({ part: { $case: 'chunk', chunk: Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) } });
          done += chunk.byteLength;
          onProgress?.(done, header.size);
        }
        // An empty blob sends no chunk: report it done all the same.
        if (header.size === 0) onProgress?.(0, 0);
        call.end();
      };
      send().catch((err: unknown) => {
        call.cancel();
        if (!settled) reject(toClientError(err, this.conn));
      });
    });
  }

  /**
   * Streams a blob into `file` (atomically), checking its hash. With `maxBytes` (the size the
   * caller expects), a server that sends more is cut off there instead of filling the disk.
   */
  async download(sha256: string, file: string, opts: { onProgress?: ProgressCallback; maxBytes?: number } = {}): Promise<{ size: number }> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.part`;
    const handle = await open(tmp, 'w');
    const hash = createHash('sha256');
    let size = 0;
    let total = 0;
    try {
      const stream = this.client.getBlob({ sha256, offset: 0 }, this.conn.metadata());
      for await (const message of stream as AsyncIterable<GetBlobResponse>) {
        const part = message.part;
        if (part?.$case === 'info') {
          total = part.info.size;
        } else if (part?.$case === 'chunk') {
          hash.update(part.chunk);
          size += part.chunk.byteLength;
          if (opts.maxBytes !== undefined && size > opts.maxBytes) {
            stream.cancel();
            throw new MmgridClientError('INTEGRITY', `the coordinator sent more than the ${opts.maxBytes} bytes of blob ${sha256}; refusing it`);
          }
          await handle.write(part.chunk);
          opts.onProgress?.(size, total);
        }
      }
      if (size === 0) opts.onProgress?.(0, total);
      const actual = hash.digest('hex');
      if (actual !== sha256 || size !== total) {
        throw new MmgridClientError('INTEGRITY', `downloaded blob ${sha256} hashes to ${actual} (${size} of ${total} bytes); refusing it`);
      }
    } catch (err) {
      await handle.close();
      await rm(tmp, { force: true });
      throw toClientError(err, this.conn);
    }
    await handle.close();
    await rename(tmp, file);
    return { size };
  }

  /** A blob's bytes in memory (for small blobs), hash-checked. */
  async downloadBytes(sha256: string, opts: { onProgress?: ProgressCallback } = {}): Promise<Buffer> {
    // Each chunk is kept as received (it is its own message's memory) and hashed as it comes,
    // so the bytes are copied once, into the result, and the hash overlaps the download.
    const parts: Uint8Array[] = [];
    let total = 0;
    const hash = createHash('sha256');
    try {
      const stream = this.client.getBlob({ sha256, offset: 0 }, this.conn.metadata());
      let size = 0;
      for await (const message of stream as AsyncIterable<GetBlobResponse>) {
        if (message.part?.$case === 'info') {
          size = message.part.info.size;
          continue;
        }
        if (message.part?.$case !== 'chunk') continue;
        const chunk = message.part.chunk;
        hash.update(chunk);
        parts.push(chunk);
        total += chunk.length;
        opts.onProgress?.(total, size);
      }
      if (total === 0) opts.onProgress?.(0, size);
    } catch (err) {
      throw toClientError(err, this.conn);
    }
    const bytes = Buffer.concat(parts, total);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new MmgridClientError('INTEGRITY', `downloaded blob ${sha256} hashes to ${actual}; refusing it`);
    return bytes;
  }

  close(): void {
    this.client.close();
  }
}

function refOf(res: PutBlobResponse, fallback: BlobRef): BlobRef {
  const b = res.blob;
  return b ? { sha256: b.sha256, size: b.size, mediaType: b.mediaType, name: b.name } : fallback;
}

export async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}
