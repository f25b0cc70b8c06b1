import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DEFAULT_TENANT, isRole, ROLES, TENANT_PATTERN, TOKEN_PREFIX, type Role } from '@mmgrid/core';
import { BadRequestError, CoordinatorError } from './errors.js';
import type { Keys } from './keys.js';

/** A token as stored: never the token itself, only its SHA-256. */
export interface TokenRecord {
  /** Public id ("tok_" and 16 hex digits), for listing and revoking. */
  readonly id: string;
  readonly role: Role;
  /** The tenant a submitter token acts for ("" for other roles). */
  readonly tenant: string;
  readonly name: string;
  readonly createdAt: number;
  /** 0: never expires. */
  readonly expiresAt: number;
  /** 0: not revoked. */
  readonly revokedAt: number;
}

interface StoredToken extends TokenRecord {
  /** SHA-256 (hex) of the token. */
  readonly hash: string;
}

export interface NewToken {
  readonly role: string;
  readonly tenant: string;
  readonly name: string;
  /** 0: never expires. */
  readonly expiresInMs: number;
}

const NAME_PATTERN = /^[\p{L}\p{N} _.:@/-]{0,128}$/u;
/** Ten years: the longest expiry a token may be given (0 means never). */
export const MAX_TOKEN_LIFETIME_MS = 10 * 365 * 24 * 3600_000;
const TOKEN_ID_PATTERN = /^tok_[0-9a-f]{16}$/;

/** SHA-256 (hex) of a bearer token: what the store keys tokens by. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The grid's tokens in Redis. A token is 32 random bytes (base64url) behind a visible prefix,
 * made here and handed out once; only its SHA-256 is kept. A token this random needs no salt
 * or slow hash: guessing one is as hard as guessing the bytes.
 */
export class TokenStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly now: () => number,
  ) {}

  /** Validates the request, stores the new token's record, and returns the token (once). */
  async create(request: NewToken): Promise<{ token: string; record: TokenRecord }> {
    const role = request.role.trim();
    if (!isRole(role)) throw new BadRequestError(`role "${request.role}" is not a role; use one of ${ROLES.join(', ')}`);
    let tenant = request.tenant.trim();
    if (role === 'submitter') {
      tenant ||= DEFAULT_TENANT;
      if (!TENANT_PATTERN.test(tenant)) throw new BadRequestError(`tenant "${tenant}" is not a tenant name (lower-case letters, digits, "_" and "-", up to 64)`);
    } else if (tenant !== '') {
      throw new BadRequestError(`only submitter tokens belong to a tenant; a ${role} token takes no tenant (got "${tenant}")`);
    }
    const name = request.name.trim();
    if (!NAME_PATTERN.test(name)) throw new BadRequestError('name must be up to 128 letters, digits, spaces or "_", ".", ":", "@", "/", "-"');
    if (!Number.isInteger(request.expiresInMs) || request.expiresInMs < 0 || request.expiresInMs > MAX_TOKEN_LIFETIME_MS) {
      throw new BadRequestError(`expires_in_ms must be 0 (never) or up to ${MAX_TOKEN_LIFETIME_MS} ms (ten years), not ${request.expiresInMs}`);
    }
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const createdAt = this.now();
    const stored: StoredToken = {
      id: `tok_${randomBytes(8).toString('hex')}`,
      role,
      tenant,
      name,
      createdAt,
      expiresAt: request.expiresInMs === 0 ? 0 : createdAt + request.expiresInMs,
      revokedAt: 0,
      hash: hashToken(token),
    };
    await this.redis.multi().hset(this.keys.tokens(), stored.id, JSON.stringify(stored)).hset(this.keys.tokenHashes(), stored.hash, stored.id).exec();
    return { token, record: recordOf(stored) };
  }

  /** The record of the token with this SHA-256, revoked or expired ones included. */
  async byHash(hash: string): Promise<TokenRecord | undefined> {
    const id = await this.redis.hget(this.keys.tokenHashes(), hash);
    if (id === null) return undefined;
    const stored = await this.stored(id);
    // A record whose hash is not this one was never this token's.
    return stored?.hash === hash ? recordOf(stored) : undefined;
  }

  async byId(id: string): Promise<TokenRecord | undefined> {
    const stored = await this.stored(id);
    return stored ? recordOf(stored) : undefined;
  }

  /** Every token, oldest first; revoked ones only when asked. */
  async list(includeRevoked: boolean): Promise<TokenRecord[]> {
    const all = await this.redis.hvals(this.keys.tokens());
    return all
      .map((json) => recordOf(JSON.parse(json) as StoredToken))
      .filter((r) => includeRevoked || r.revokedAt === 0)
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Marks the token revoked (kept, so listing shows when). Revoking twice changes nothing. */
  async revoke(id: string): Promise<TokenRecord> {
    if (!TOKEN_ID_PATTERN.test(id)) throw new BadRequestError(`"${id}" is not a token id (tok_ and 16 hex digits; see: mmgrid token list)`);
    const stored = await this.stored(id);
    if (!stored) throw new CoordinatorError('NOT_FOUND', `token ${id} not found; see: mmgrid token list`);
    if (stored.revokedAt !== 0) return recordOf(stored);
    const revoked: StoredToken = { ...stored, revokedAt: this.now() };
    await this.redis.hset(this.keys.tokens(), id, JSON.stringify(revoked));
    return recordOf(revoked);
  }

  private async stored(id: string): Promise<StoredToken | undefined> {
    const json = await this.redis.hget(this.keys.tokens(), id);
    return json === null ? undefined : (JSON.parse(json) as StoredToken);
  }
}

function recordOf(stored: StoredToken): TokenRecord {
  return {
    id: stored.id,
    role: stored.role,
    tenant: stored.tenant,
    name: stored.name,
    createdAt: stored.createdAt,
    expiresAt: stored.expiresAt,
    revokedAt: stored.revokedAt,
  };
}
