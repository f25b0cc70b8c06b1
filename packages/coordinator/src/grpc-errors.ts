import { status, type sendUnaryData, type ServerErrorResponse, type ServerUnaryCall } from '@grpc/grpc-js';
import { InvalidJobSpecError, InvalidOptionError, MmgridError, PlanError, UnsupportedMediaError } from '@mmgrid/core';
import { CoordinatorError, type CoordinatorErrorCode } from './errors.js';
import type { Logger } from './logger.js';

const coordinatorCodes: Record<CoordinatorErrorCode, status> = {
  NOT_FOUND: status.NOT_FOUND,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  UNAVAILABLE: status.UNAVAILABLE,
};

/**
 * The one place where errors become gRPC statuses. Mistakes of the caller keep their message;
 * anything unexpected is logged with its stack and reaches the caller as INTERNAL.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): ServerErrorResponse {
  if (err instanceof CoordinatorError) return withCode(coordinatorCodes[err.code], err.message);
  if (err instanceof InvalidJobSpecError || err instanceof UnsupportedMediaError || err instanceof PlanError || err instanceof InvalidOptionError) {
    return withCode(status.INVALID_ARGUMENT, err.message);
  }
  if (err instanceof MmgridError) return withCode(status.INVALID_ARGUMENT, err.message);
  if (isRedisDown(err)) {
    logger.warn({ method, err: String(err) }, 'redis unavailable');
    return withCode(status.UNAVAILABLE, 'the coordinator cannot reach Redis right now; retry shortly');
  }
  logger.error({ method, err }, 'internal error');
  return withCode(status.INTERNAL, `internal error in ${method}; the coordinator log has the details`);
}

function withCode(code: status, message: string): ServerErrorResponse {
  return Object.assign(new Error(message), { code, details: message });
}

function isRedisDown(err: unknown): boolean {
  return err instanceof Error && /ECONNREFUSED|Connection is closed|ETIMEDOUT|MaxRetriesPerRequest|Stream isn't writeable/.test(err.message);
}

/** Adapts an async handler to grpc-js's unary callback, mapping errors in one place. */
export function unary<Req, Res>(
  logger: Logger,
  method: string,
  handler: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    handler(call).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err, logger, method)),
    );
  };
}
