import { Metadata, status, type sendUnaryData, type ServerErrorResponse, type ServerUnaryCall } from '@grpc/grpc-js';
import { ReplyError } from 'ioredis';
import { InvalidJobSpecError, InvalidOptionError, MmgridError, PlanError, UnsupportedMediaError } from '@mmgrid/core';
import { CoordinatorError, LimitExceededError, type CoordinatorErrorCode } from './errors.js';
import { LIMIT_METADATA, RETRY_AFTER_METADATA } from './limits.js';
import type { Logger } from './logger.js';

const coordinatorCodes: Record<CoordinatorErrorCode, status> = {
  NOT_FOUND: status.NOT_FOUND,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAVAILABLE: status.UNAVAILABLE,
};

/**
 * The one place where errors become gRPC statuses. Mistakes of the caller keep their message;
 * anything unexpected is logged with its stack and reaches the caller as INTERNAL. A refusal
 * for a limit carries the limit's name in trailing metadata (mmgrid-limit), and for a rate,
 * when to try again (retry-after-ms), for programs to read without parsing the message.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): ServerErrorResponse {
  if (err instanceof LimitExceededError) {
    const trailers = new Metadata();
    trailers.set(LIMIT_METADATA, err.limit);
    if (err.retryAfterMs !== undefined) trailers.set(RETRY_AFTER_METADATA, String(err.retryAfterMs));
    return Object.assign(withCode(status.RESOURCE_EXHAUSTED, err.message), { metadata: trailers });
  }
  if (err instanceof CoordinatorError) return withCode(coordinatorCodes[err.code], err.message);
  if (err instanceof InvalidJobSpecError || err instanceof UnsupportedMediaError || err instanceof PlanError || err instanceof InvalidOptionError) {
    return withCode(status.INVALID_ARGUMENT, err.message);
  }
  if (err instanceof MmgridError) return withCode(status.INVALID_ARGUMENT, err.message);
  if (isCallGone(err)) {
    // Nobody is left to answer: not a fault of this coordinator, and not worth an error log.
    logger.debug({ method }, 'the request stream ended before the handler had read it (the caller went away, or grpc-js refused a message it could not decode)');
    return withCode(status.CANCELLED, `${method}: the request stream ended before it was read`);
  }
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

/**
 * The base class of ioredis's own errors (redis-errors' RedisError): ReplyError, AbortError
 * ("Command aborted due to connection close"), InterruptError, MaxRetriesPerRequestError.
 */
const RedisError: unknown = Object.getPrototypeOf(ReplyError);

/** Errors of ioredis's cluster client, by name (it has no other mark). */
const REDIS_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/**
 * The plain errors ioredis fails a command with when its connection is gone (its own
 * constants, compared whole): a closed client, and a queue that takes no commands offline.
 */
const REDIS_CLOSED_MESSAGES = new Set(['Connection is closed.', "Stream isn't writeable and enableOfflineQueue options is false"]);

/**
 * Whether `err` is ioredis failing a command because Redis cannot be reached. Told by the
 * error's class or name (or ioredis's exact messages), never by words such as ECONNREFUSED
 * that any other connection (the blob store's) may use. A ReplyError is an answer from
 * Redis, so Redis was reached.
 */
function isRedisDown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isInstance(err, ReplyError)) return false;
  if (isInstance(err, RedisError) || REDIS_ERROR_NAMES.has(err.name)) return true;
  return err.constructor === Error && REDIS_CLOSED_MESSAGES.has(err.message);
}

/**
 * Whether reading a request stream failed because the call itself is over: the client
 * cancelled or disconnected, or grpc-js ended the call with INTERNAL because a message could
 * not be decoded (found by fuzzing PutBlob with random bytes). Node's streams report that as
 * ERR_STREAM_PREMATURE_CLOSE.
 */
function isCallGone(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** `value instanceof cls` for a class known only at run time (ioredis types its errors `any`). */
function isInstance(value: unknown, cls: unknown): boolean {
  return typeof cls === 'function' && value instanceof cls;
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
