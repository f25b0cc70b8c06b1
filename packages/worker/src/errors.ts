/**
 * Why a task failed on this worker. `retryable` tells the coordinator whether running it
 * again (here or elsewhere) may help; `code` is stable for scripts.
 */
export type TaskFailureCode =
  | 'INPUT_DECODE_FAILED'
  | 'INPUT_MISSING'
  /** The input is larger than the backend takes; running again will not help. */
  | 'INPUT_TOO_LARGE'
  | 'TOOL_MISSING'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'WORKER_DRAINING'
  | 'UNSUPPORTED_KIND'
  | 'INVALID_PARAMS'
  | 'INVALID_OUTPUT'
  /** The result is larger than a message to the coordinator may be; running again will not help. */
  | 'OUTPUT_TOO_LARGE'
  | 'UPSTREAM_FAILED'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_REFUSED'
  | 'TASK_FAILED';

export class TaskFailedError extends Error {
  constructor(
    readonly code: TaskFailureCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskFailedError';
  }
}

/** The input's bytes cannot be decoded: running again will not help. */
export class InputDecodeError extends TaskFailedError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INPUT_DECODE_FAILED', message, false, options);
    this.name = 'InputDecodeError';
  }
}

/** A program the task needs is not installed here; another worker may have it. */
export class ToolMissingError extends TaskFailedError {
  constructor(
    readonly tool: string,
    message: string,
  ) {
    super('TOOL_MISSING', message, true);
    this.name = 'ToolMissingError';
  }
}

export function toTaskFailure(err: unknown): TaskFailedError {
  if (err instanceof TaskFailedError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TaskFailedError('TASK_FAILED', message, true, { cause: err });
}

/** The metrics endpoint could not listen on its address (the worker runs on without it). */
export class MetricsListenError extends Error {
  constructor(
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    const cause = options?.cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? ` (${cause.code})` : '';
    super(`cannot serve metrics on ${address}${code}: ${cause instanceof Error ? cause.message : String(cause)}`, options);
    this.name = 'MetricsListenError';
  }
}
