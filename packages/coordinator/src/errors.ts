/**
 * Coordinator errors. Each maps to exactly one gRPC status in grpc-errors.ts; messages are
 * for the person at the other end.
 */
export type CoordinatorErrorCode =
  | 'NOT_FOUND'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'INVALID_ARGUMENT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE';

export class CoordinatorError extends Error {
  constructor(
    readonly code: CoordinatorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CoordinatorError';
  }
}

export class JobNotFoundError extends CoordinatorError {
  constructor(readonly jobId: string) {
    super('NOT_FOUND', `job ${jobId} not found`);
    this.name = 'JobNotFoundError';
  }
}

export class BlobNotFoundError extends CoordinatorError {
  constructor(readonly sha256: string) {
    super('NOT_FOUND', `blob ${sha256} not found; upload it with BlobService.PutBlob first`);
    this.name = 'BlobNotFoundError';
  }
}

/**
 * A limit was exceeded (RESOURCE_EXHAUSTED): `limit` names it (the option that sets it, such as
 * "maxInputsPerJob"), `max` is what the grid allows, `actual` what was asked for, and
 * `retryAfterMs` when asking again may succeed (a rate limit). See limits.ts for the messages.
 */
export class LimitExceededError extends CoordinatorError {
  readonly actual: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly limit: string,
    readonly max: number,
    message: string,
    details: { readonly actual?: number; readonly retryAfterMs?: number } = {},
  ) {
    super('RESOURCE_EXHAUSTED', message);
    this.name = 'LimitExceededError';
    this.actual = details.actual;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** Bad bytes or a bad request that is not about the job spec itself. */
export class BadRequestError extends CoordinatorError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
    this.name = 'BadRequestError';
  }
}

/** A call without a valid token: none, unknown, expired or revoked (the message says which). */
export class UnauthenticatedError extends CoordinatorError {
  constructor(
    readonly reason: 'missing' | 'unknown' | 'expired' | 'revoked',
    message: string,
  ) {
    super('UNAUTHENTICATED', message);
    this.name = 'UnauthenticatedError';
  }
}

/** A valid token whose role does not allow the call. */
export class PermissionDeniedError extends CoordinatorError {
  constructor(
    readonly needed: readonly string[],
    readonly held: string,
    message: string,
  ) {
    super('PERMISSION_DENIED', message);
    this.name = 'PermissionDeniedError';
  }
}

/**
 * The gRPC listener's TLS settings cannot be used: a missing or unreadable file, one that is
 * not PEM, a key that is not the certificate's, or plaintext where it was not asked for.
 * `option` is the command-line option at fault. Raised before the coordinator starts.
 */
export class TlsConfigError extends Error {
  constructor(
    readonly option: string,
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = 'TlsConfigError';
  }
}
