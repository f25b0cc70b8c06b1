import type { Metadata } from '@grpc/grpc-js';
import { DEFAULT_TENANT, TENANT_PATTERN } from '@mmgrid/core';
import { CoordinatorError } from './errors.js';

export type Role = 'submitter' | 'worker' | 'admin';

/** Who is calling, as established from the call's bearer token. */
export interface Principal {
  readonly subject: string;
  readonly tenant: string;
  readonly roles: readonly Role[];
}

/** Turns a call's metadata into a Principal, or throws a CoordinatorError('UNAUTHENTICATED'). */
export interface Authenticator {
  authenticate(metadata: Metadata, role: Role): Promise<Principal>;
}


/** The bearer token of a call ("authorization: Bearer <token>"), or "" when there is none. */
export function bearerToken(metadata: Metadata): string {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return '';
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1] ?? '';
}

/** Metadata key naming the tenant a caller acts for, on an open grid. */
export const TENANT_METADATA = 'x-mmgrid-tenant';

/**
 * An open grid: every caller has every role and acts for the tenant it names in
 * `x-mmgrid-tenant` metadata (the default tenant otherwise). Tokens are read but not checked.
 * For a trusted network or a laptop; the coordinator warns when it runs this way.
 */
export class OpenAuthenticator implements Authenticator {
  authenticate(metadata: Metadata): Promise<Principal> {
    const token = bearerToken(metadata);
    const named = metadata.get(TENANT_METADATA)[0];
    const tenant = typeof named === 'string' && named !== '' ? named : DEFAULT_TENANT;
    if (!TENANT_PATTERN.test(tenant)) {
      return Promise.reject(new CoordinatorError('INVALID_ARGUMENT', `tenant "${tenant}" is not a tenant name (lower-case letters, digits, "_" and "-", up to 64)`));
    }
    return Promise.resolve({ subject: token === '' ? 'anonymous' : 'token', tenant, roles: ['submitter', 'worker', 'admin'] });
  }
}
