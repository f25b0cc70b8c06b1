import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/**
 * Which tenants may read which blobs. Blobs are content-addressed and stored once, whoever
 * uploads them; a tenant may read a blob only once it has uploaded the bytes itself (the
 * upload proves it holds them) or the blob is part of one of its jobs' results.
 */
export class BlobGrants {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async grant(tenant: string, sha256s: readonly string[]): Promise<void> {
    if (sha256s.length === 0) return;
    await this.redis.sadd(this.keys.tenantBlobs(tenant), ...sha256s);
  }

  /** The subset of `sha256s` the tenant may read. */
  async held(tenant: string, sha256s: readonly string[]): Promise<Set<string>> {
    if (sha256s.length === 0) return new Set();
    const flags = await this.redis.smismember(this.keys.tenantBlobs(tenant), ...sha256s);
    return new Set(sha256s.filter((_, i) => flags[i] === 1));
  }

  async holds(tenant: string, sha256: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys.tenantBlobs(tenant), sha256)) === 1;
  }
}
