import type { Metadata } from '@grpc/grpc-js';

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

export const DEFAULT_TENANT = 'default';

/** The bearer token of a call ("authorization: Bearer <token>"), or "" when there is none. */
export function bearerToken(metadata: Metadata): string {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return '';
  const match = /^Bearer\s+(.+)$/i.exec(value.trim());
  return match?.[1] ?? '';
}

/**
 * An open grid: every caller acts in the default tenant with every role. Tokens are read but
 * not checked. For a trusted network or a laptop; the coordinator warns when it runs this way.
 */
export class OpenAuthenticator implements Authenticator {
  authenticate(metadata: Metadata): Promise<Principal> {
    const token = bearerToken(metadata);
    return Promise.resolve({ subject: token === '' ? 'anonymous' : 'token', tenant: DEFAULT_TENANT, roles: ['submitter', 'worker', 'admin'] });
  }
}
