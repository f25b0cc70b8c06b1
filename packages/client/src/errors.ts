import { status, type ServiceError } from '@grpc/grpc-js';

/** What kind of failure a call met; the CLI maps each to an exit code. */
export type ClientErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'INTEGRITY'
  | 'INTERNAL';

/** An error from talking to a coordinator, with a message a person can act on. */
export class MmgridClientError extends Error {
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MmgridClientError';
  }
}

const codes: Partial<Record<status, ClientErrorCode>> = {
  [status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [status.OUT_OF_RANGE]: 'INVALID_ARGUMENT',
  [status.NOT_FOUND]: 'NOT_FOUND',
  [status.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [status.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [status.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [status.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [status.UNAVAILABLE]: 'UNAVAILABLE',
  [status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [status.CANCELLED]: 'CANCELLED',
  [status.DATA_LOSS]: 'INTEGRITY',
};

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

/** The one place where gRPC statuses become typed client errors. */
export function toClientError(err: unknown, address: string): MmgridClientError {
  if (err instanceof MmgridClientError) return err;
  if (!isServiceError(err)) {
    return new MmgridClientError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  }
  const code = codes[err.code] ?? 'INTERNAL';
  if (code === 'UNAVAILABLE') {
    const why = /ECONNREFUSED|Connection refused/i.test(err.details) ? 'connection refused' : err.details || 'unavailable';
    return new MmgridClientError(
      code,
      `cannot reach coordinator at ${address} (${why}). Is it running? Set --coordinator or MMGRID_COORDINATOR.`,
      { cause: err },
    );
  }
  if (code === 'DEADLINE_EXCEEDED') {
    return new MmgridClientError(code, `the coordinator at ${address} did not answer in time`, { cause: err });
  }
  return new MmgridClientError(code, err.details || err.message, { cause: err });
}
