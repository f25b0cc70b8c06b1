import { access } from 'node:fs/promises';
import path from 'node:path';
import type { BlobClient } from '@mmgrid/client';

/** The blob transfers the worker needs (a BlobClient, or one that follows reconnections). */
export type BlobClientLike = Pick<BlobClient, 'download' | 'uploadBytes'>;
import { isSha256, type BlobRef } from '@mmgrid/core';
import { TaskFailedError } from './errors.js';

/**
 * Blobs this worker has fetched, kept by hash under one folder. A blob already held is never
 * downloaded again; a download is hash-checked before it is kept, and concurrent requests
 * for the same blob share one download.
 */
export class BlobCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly dir: string,
    private readonly client: BlobClientLike,
  ) {}

  pathOf(sha256: string): string {
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  async get(ref: BlobRef): Promise<string> {
    if (!isSha256(ref.sha256)) throw new TaskFailedError('INPUT_MISSING', `"${ref.sha256}" is not a blob hash`, false);
    const file = this.pathOf(ref.sha256);
    try {
      await access(file);
      return file;
    } catch {
      // not cached yet
    }
    let pending = this.inflight.get(ref.sha256);
    if (!pending) {
      pending = this.client
        .download(ref.sha256, file)
        .then(() => file)
        .finally(() => this.inflight.delete(ref.sha256));
      this.inflight.set(ref.sha256, pending);
    }
    try {
      return await pending;
    } catch (err) {
      throw new TaskFailedError('INPUT_MISSING', `could not fetch input ${ref.name || ref.sha256}: ${err instanceof Error ? err.message : String(err)}`, true, { cause: err });
    }
  }
}
