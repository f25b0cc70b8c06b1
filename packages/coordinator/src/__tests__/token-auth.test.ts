import { randomBytes } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../auth.js';
import { BlobGrants } from '../blob-grants.js';
import { CoordinatorError, PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { Keys } from '../keys.js';
import { hashToken, TokenStore } from '../token-store.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

function md(token: string | undefined, tenant?: string): Metadata {
  const m = new Metadata();
  if (token !== undefined) m.set('authorization', `Bearer ${token}`);
  if (tenant !== undefined) m.set('x-mmgrid-tenant', tenant);
  return m;
}

async function refusal(promise: Promise<unknown>): Promise<CoordinatorError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof CoordinatorError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe.skipIf(!HAS_REDIS_SERVER)('TokenStore and TokenAuthenticator', () => {
  let server: TestRedis;
  let redis: Redis;
  let store: TokenStore;
  let clock = 1_800_000_000_000;
  const now = (): number => clock;
  const ADMIN = randomBytes(32).toString('base64url');
  let auth: TokenAuthenticator;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
    const keys = new Keys(`t${randomBytes(4).toString('hex')}`);
    store = new TokenStore(redis, keys, now);
    auth = new TokenAuthenticator({ store, adminToken: ADMIN, now, cacheMs: 5_000 });
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('keeps only the hash of a token, and issues distinct prefixed tokens', async () => {
    const a = await store.create({ role: 'worker', tenant: '', name: 'box', expiresInMs: 0 });
    const b = await store.create({ role: 'worker', tenant: '', name: 'box', expiresInMs: 0 });
    expect(a.token).toMatch(/^mmg_[A-Za-z0-9_-]{43}$/);
    expect(a.token).not.toBe(b.token);
    expect(a.record.id).toMatch(/^tok_[0-9a-f]{16}$/);
    const everything = JSON.stringify(await redis.eval("local out = {} for _, k in ipairs(redis.call('KEYS', '*')) do table.insert(out, k) for _, v in ipairs(redis.call('HGETALL', k)) do table.insert(out, v) end end return out", 0));
    expect(everything).not.toContain(a.token);
    expect(everything).toContain(hashToken(a.token));
  });

  it('refuses what is not a valid token, saying which, without echoing it', async () => {
    const revoked = await store.create({ role: 'submitter', tenant: 'acme', name: '', expiresInMs: 0 });
    await store.revoke(revoked.record.id);
    const expiring = await store.create({ role: 'submitter', tenant: 'acme', name: '', expiresInMs: 60_000 });
    const cases: { name: string; meta: Metadata; reason: UnauthenticatedError['reason']; says: string; at?: number }[] = [
      { name: 'none', meta: md(undefined), reason: 'missing', says: 'requires a token' },
      { name: 'a bare header', meta: (() => { const m = new Metadata(); m.set('authorization', 'Basic abc'); return m; })(), reason: 'missing', says: 'requires a token' },
      { name: 'unknown', meta: md('mmg_unknown-token'), reason: 'unknown', says: 'not one this grid issued' },
      { name: 'revoked', meta: md(revoked.token), reason: 'revoked', says: `token ${revoked.record.id} was revoked` },
      { name: 'expired', meta: md(expiring.token), reason: 'expired', says: `token ${expiring.record.id} expired at`, at: clock + 60_000 },
    ];
    for (const c of cases) {
      const before = clock;
      if (c.at !== undefined) clock = c.at;
      const err = await refusal(auth.authenticate(c.meta, 'submitter'));
      clock = before;
      expect(err, c.name).toBeInstanceOf(UnauthenticatedError);
      expect((err as UnauthenticatedError).reason, c.name).toBe(c.reason);
      expect(err.code).toBe('UNAUTHENTICATED');
      expect(err.message, c.name).toContain(c.says);
      expect(err.message).not.toContain('mmg_');
    }
    // Still valid a millisecond before it expires.
    clock += 59_999;
    await expect(auth.authenticate(md(expiring.token), 'submitter')).resolves.toMatchObject({ tenant: 'acme' });
    clock -= 59_999;
  });

  it('holds each token to its role, naming the role needed and the one held', async () => {
    const submitter = await store.create({ role: 'submitter', tenant: 'acme', name: '', expiresInMs: 0 });
    const worker = await store.create({ role: 'worker', tenant: '', name: '', expiresInMs: 0 });
    const admin = await store.create({ role: 'admin', tenant: '', name: 'alice', expiresInMs: 0 });
    const denied = await refusal(auth.authenticate(md(submitter.token), 'worker'));
    expect(denied).toBeInstanceOf(PermissionDeniedError);
    expect(denied.code).toBe('PERMISSION_DENIED');
    expect(denied.message).toBe(`token ${submitter.record.id} has the submitter role; this call needs the worker role`);
    expect((await refusal(auth.authenticate(md(worker.token), 'submitter'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(auth.authenticate(md(worker.token), 'admin'))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(auth.authenticate(md(submitter.token), 'admin'))).code).toBe('PERMISSION_DENIED');
    await expect(auth.authenticate(md(worker.token), ['submitter', 'worker'])).resolves.toMatchObject({ roles: ['worker'], tokenId: worker.record.id });
    // A submitter acts for its own tenant, whatever it names; an admin for the one it names.
    await expect(auth.authenticate(md(submitter.token, 'other'), 'submitter')).resolves.toMatchObject({ tenant: 'acme', roles: ['submitter'] });
    await expect(auth.authenticate(md(admin.token, 'other'), 'worker')).resolves.toMatchObject({ tenant: 'other', roles: ['submitter', 'worker', 'admin'], subject: `${admin.record.id} (alice)` });
    await expect(auth.authenticate(md(admin.token), 'admin')).resolves.toMatchObject({ tenant: 'default' });
    // The bootstrap token is an admin.
    await expect(auth.authenticate(md(ADMIN), 'admin')).resolves.toMatchObject({ roles: ['submitter', 'worker', 'admin'] });
    expect((await refusal(auth.authenticate(md(`${ADMIN}x`), 'admin'))).code).toBe('UNAUTHENTICATED');
  });

  it('trusts a looked-up token for a while, and forgets it at once when told it was revoked', async () => {
    const worker = await store.create({ role: 'worker', tenant: '', name: '', expiresInMs: 0 });
    await auth.authenticate(md(worker.token), 'worker');
    await store.revoke(worker.record.id);
    // Cached: another replica revoked it and its notice has not arrived yet.
    await expect(auth.authenticate(md(worker.token), 'worker')).resolves.toMatchObject({ tokenId: worker.record.id });
    expect(await auth.stillValid(worker.record.id)).toBe(false);
    auth.forget(worker.record.id);
    expect((await refusal(auth.authenticate(md(worker.token), 'worker'))).message).toContain('was revoked');
  });

  it('refuses bad token requests, naming what is allowed', async () => {
    const cases: { request: Parameters<TokenStore['create']>[0]; says: string }[] = [
      { request: { role: 'root', tenant: '', name: '', expiresInMs: 0 }, says: 'use one of submitter, worker, admin' },
      { request: { role: 'worker', tenant: 'acme', name: '', expiresInMs: 0 }, says: 'only submitter tokens belong to a tenant' },
      { request: { role: 'submitter', tenant: 'Not Valid', name: '', expiresInMs: 0 }, says: 'is not a tenant name' },
      { request: { role: 'admin', tenant: '', name: 'x'.repeat(129), expiresInMs: 0 }, says: 'name must be up to 128' },
      { request: { role: 'admin', tenant: '', name: '', expiresInMs: -1 }, says: 'expires_in_ms must be 0 (never)' },
    ];
    for (const c of cases) expect((await refusal(store.create(c.request))).message).toContain(c.says);
    expect((await refusal(store.revoke('tok_0123456789abcdef'))).code).toBe('NOT_FOUND');
    expect((await refusal(store.revoke('../etc'))).code).toBe('INVALID_ARGUMENT');
    const made = await store.create({ role: 'submitter', tenant: '', name: '', expiresInMs: 0 });
    expect(made.record.tenant).toBe('default');
  });

  it('lists tokens oldest first, revoked ones only when asked', async () => {
    const all = await store.list(true);
    const active = await store.list(false);
    expect(active.every((t) => t.revokedAt === 0)).toBe(true);
    expect(all.length).toBeGreaterThan(active.length);
    expect(all.map((t) => t.createdAt)).toEqual([...all.map((t) => t.createdAt)].sort((a, b) => a - b));
  });

  it('grants blobs per tenant', async () => {
    const grants = new BlobGrants(redis, new Keys('grants'));
    const [x, y] = ['a'.repeat(64), 'b'.repeat(64)];
    await grants.grant('acme', [x]);
    expect(await grants.holds('acme', x)).toBe(true);
    expect(await grants.holds('other', x)).toBe(false);
    expect([...(await grants.held('acme', [x, y]))]).toEqual([x]);
    expect([...(await grants.held('acme', []))]).toEqual([]);
  });
});
