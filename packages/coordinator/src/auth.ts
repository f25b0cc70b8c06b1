import { timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import { DEFAULT_TENANT, TENANT_PATTERN, type Role } from '@mmgrid/core';
import { CoordinatorError, PermissionDeniedError, UnauthenticatedError } from './errors.js';
import { hashToken, type TokenRecord, type TokenStore } from './token-store.js';

export type { Role };

/** Who is calling, as established from the call's bearer token. */
export interface Principal {
  readonly subject: string;
  readonly tenant: string;
  readonly roles: readonly Role[];
  /** The id of the stored token the call carried (so its sessions can be found when it is revoked). */
  readonly tokenId?: string;
}

/**
 * Turns a call's metadata into a Principal that holds one of the roles asked for, or throws a
 * CoordinatorError: UNAUTHENTICATED without a valid token, PERMISSION_DENIED for a token
 * whose role does not allow the call.
 */
export interface Authenticator {
  authenticate(metadata: Metadata, role: Role | readonly Role[]): Promise<Principal>;
}

/** The bearer token of a call ("authorization: Bearer <token>"), or "" when there is none. */
export function bearerToken(metadata: Metadata): string {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return '';
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1] ?? '';
}

/** Metadata key naming the tenant a caller acts for, on an open grid (and for admins). */
export const TENANT_METADATA = 'x-mmgrid-tenant';

/** The tenant named in the call's metadata, or the default one; refuses a malformed name. */
function namedTenant(metadata: Metadata): string {
  const named = metadata.get(TENANT_METADATA)[0];
  const tenant = typeof named === 'string' && named !== '' ? named : DEFAULT_TENANT;
  if (!TENANT_PATTERN.test(tenant)) {
    throw new CoordinatorError('INVALID_ARGUMENT', `tenant "${tenant}" is not a tenant name (lower-case letters, digits, "_" and "-", up to 64)`);
  }
  return tenant;
}

/**
 * The tenant whose blobs a principal is limited to, or undefined for one that may read every
 * blob: admins, and workers (they fetch the inputs of any tenant's tasks).
 */
export function blobTenantOf(principal: Principal): string | undefined {
  return principal.roles.includes('admin') || principal.roles.includes('worker') ? undefined : principal.tenant;
}

/**
 * An open grid: every caller has every role and acts for the tenant it names in
 * `x-mmgrid-tenant` metadata (the default tenant otherwise). Tokens are read but not checked.
 * For a trusted network or a laptop; the coordinator warns when it runs this way.
 */
export class OpenAuthenticator implements Authenticator {
  authenticate(metadata: Metadata): Promise<Principal> {
    try {
      const token = bearerToken(metadata);
      return Promise.resolve({ subject: token === '' ? 'anonymous' : 'token', tenant: namedTenant(metadata), roles: ['submitter', 'worker', 'admin'] });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

export interface TokenAuthenticatorOptions {
  readonly store: TokenStore;
  /** A bootstrap admin token (MMGRID_ADMIN_TOKEN), accepted as admin; "" for none. */
  readonly adminToken: string;
  readonly now: () => number;
  /** How long a looked-up token is trusted without reading Redis again. @default 5 s */
  readonly cacheMs?: number;
}

const ALL_ROLES: readonly Role[] = ['submitter', 'worker', 'admin'];
const BOOTSTRAP_ID = 'bootstrap-admin';

/**
 * A grid with tokens: every call must carry one the coordinator issued (or the bootstrap admin
 * token). A submitter token acts for its own tenant only; a worker token may only run tasks;
 * an admin token has every role and acts for the tenant named in `x-mmgrid-tenant` (the
 * default one otherwise). Lookups are kept for a few seconds; a revoked token is dropped at
 * once on every replica (`forget`, driven by the control channel).
 */
export class TokenAuthenticator implements Authenticator {
  private readonly cache = new Map<string, { record: TokenRecord; until: number }>();
  private readonly adminHash: Buffer | undefined;
  private readonly cacheMs: number;

  constructor(private readonly options: TokenAuthenticatorOptions) {
    this.adminHash = options.adminToken === '' ? undefined : Buffer.from(hashToken(options.adminToken), 'hex');
    this.cacheMs = options.cacheMs ?? 5_000;
  }

  async authenticate(metadata: Metadata, role: Role | readonly Role[]): Promise<Principal> {
    const needed: readonly Role[] = typeof role === 'string' ? [role] : role;
    const token = bearerToken(metadata);
    if (token === '') {
      throw new UnauthenticatedError('missing', 'this grid requires a token: send "authorization: Bearer <token>" (mmgrid --token or MMGRID_TOKEN)');
    }
    const hash = hashToken(token);
    if (this.adminHash && timingSafeEqual(Buffer.from(hash, 'hex'), this.adminHash)) {
      return { subject: BOOTSTRAP_ID, tenant: namedTenant(metadata), roles: ALL_ROLES, tokenId: BOOTSTRAP_ID };
    }
    const record = await this.lookup(hash);
    // Never echo the token: name the problem and, for a known token, its public id.
    if (!record) throw new UnauthenticatedError('unknown', 'the token is not one this grid issued (check --token or MMGRID_TOKEN)');
    if (record.revokedAt !== 0) throw new UnauthenticatedError('revoked', `token ${record.id} was revoked at ${new Date(record.revokedAt).toISOString()}`);
    const now = this.options.now();
    if (record.expiresAt !== 0 && now >= record.expiresAt) {
      throw new UnauthenticatedError('expired', `token ${record.id} expired at ${new Date(record.expiresAt).toISOString()}; ask an admin for a new one`);
    }
    const roles: readonly Role[] = record.role === 'admin' ? ALL_ROLES : [record.role];
    if (!needed.some((r) => roles.includes(r))) {
      throw new PermissionDeniedError(
        needed,
        record.role,
        `token ${record.id} has the ${record.role} role; this call needs the ${needed.join(' or ')} role`,
      );
    }
    const subject = record.name === '' ? record.id : `${record.id} (${record.name})`;
    if (record.role === 'admin') return { subject, tenant: namedTenant(metadata), roles, tokenId: record.id };
    // A submitter token is bound to its tenant: x-mmgrid-tenant is ignored.
    return { subject, tenant: record.role === 'submitter' ? record.tenant : DEFAULT_TENANT, roles, tokenId: record.id };
  }

  /** Drops a token from the cache (it was revoked, here or on another replica). */
  forget(tokenId: string): void {
    for (const [hash, entry] of this.cache) if (entry.record.id === tokenId) this.cache.delete(hash);
  }

  /** Whether the token with this id is still valid (for sessions opened with it). */
  async stillValid(tokenId: string): Promise<boolean> {
    if (tokenId === BOOTSTRAP_ID) return this.adminHash !== undefined;
    const record = await this.options.store.byId(tokenId);
    return record !== undefined && record.revokedAt === 0 && (record.expiresAt === 0 || this.options.now() < record.expiresAt);
  }

  private async lookup(hash: string): Promise<TokenRecord | undefined> {
    const now = this.options.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now) return cached.record;
    const record = await this.options.store.byHash(hash);
    if (record) {
      // Bounded: entries of tokens not used lately are dropped when the cache grows.
      if (this.cache.size >= MAX_CACHED) for (const [h, e] of this.cache) if (e.until <= now) this.cache.delete(h);
      if (this.cache.size < MAX_CACHED) this.cache.set(hash, { record, until: now + this.cacheMs });
    } else {
      this.cache.delete(hash);
    }
    return record;
  }
}

const MAX_CACHED = 10_000;
