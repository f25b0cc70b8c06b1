import type { ClientErrorCode } from '@mmgrid/client';

/** The CLI's exit codes (documented in docs/cli.md). */
export const ExitCode = {
  OK: 0,
  /** The job failed or was cancelled. */
  JOB_FAILED: 1,
  /** Bad command line or input refused by the coordinator. */
  USAGE: 2,
  NOT_FOUND: 3,
  UNAUTHENTICATED: 4,
  /** The coordinator (or something it needs) cannot be reached. */
  UNAVAILABLE: 5,
  /** A limit or quota was exceeded. */
  LIMIT: 6,
  /** The job has not finished yet. */
  NOT_READY: 7,
  /** Ctrl-C while following a job: detached, the job keeps running (128 + SIGINT). */
  DETACHED: 130,
  INTERNAL: 70,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const byClientCode: Record<ClientErrorCode, ExitCodeValue> = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  FAILED_PRECONDITION: ExitCode.USAGE,
  ALREADY_EXISTS: ExitCode.USAGE,
  NOT_FOUND: ExitCode.NOT_FOUND,
  UNAUTHENTICATED: ExitCode.UNAUTHENTICATED,
  PERMISSION_DENIED: ExitCode.UNAUTHENTICATED,
  UNAVAILABLE: ExitCode.UNAVAILABLE,
  DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
  RESOURCE_EXHAUSTED: ExitCode.LIMIT,
  // The connection closed under the call: like UNAVAILABLE, worth trying again.
  CANCELLED: ExitCode.UNAVAILABLE,
  NOT_READY: ExitCode.NOT_READY,
  JOB_FAILED: ExitCode.JOB_FAILED,
  // Stopped following a job (Ctrl-C): the job goes on, unfinished as far as this command knows.
  ABORTED: ExitCode.DETACHED,
  INTEGRITY: ExitCode.INTERNAL,
  INTERNAL: ExitCode.INTERNAL,
};

export function exitCodeFor(code: ClientErrorCode): ExitCodeValue {
  return byClientCode[code];
}
