/**
 * Errors raised by pure domain code. Each carries a stable `code` so callers branch on
 * `instanceof` or `code`, never on message text. Messages are written for people: they say
 * what was wrong and what is allowed.
 */
export type MmgridErrorCode =
  | 'INVALID_JOB_SPEC'
  | 'UNSUPPORTED_MEDIA'
  | 'INVALID_OPTION'
  | 'INVALID_TASK_OUTPUT'
  | 'PLAN_FAILED';

export abstract class MmgridError extends Error {
  abstract readonly code: MmgridErrorCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A job spec that cannot be accepted. `path` points at the offending field (e.g. `inputs[2].name`). */
export class InvalidJobSpecError extends MmgridError {
  readonly code = 'INVALID_JOB_SPEC' as const;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}

/** An input whose bytes are not a media type any pipeline can use. */
export class UnsupportedMediaError extends MmgridError {
  readonly code = 'UNSUPPORTED_MEDIA' as const;
  constructor(
    readonly inputName: string,
    readonly detected: string,
    message: string,
  ) {
    super(message);
  }
}

/** An option outside its allowed range; names the option and the range. */
export class InvalidOptionError extends MmgridError {
  readonly code = 'INVALID_OPTION' as const;
  constructor(
    readonly option: string,
    readonly allowed: string,
    readonly value: unknown,
  ) {
    super(`option ${option} must be ${allowed} (got ${describeValue(value)})`);
  }
}

/** A task output that does not match its kind's schema. */
export class InvalidTaskOutputError extends MmgridError {
  readonly code = 'INVALID_TASK_OUTPUT' as const;
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(`output of ${kind} is malformed: ${message}`);
  }
}

/** The planner cannot turn a job into tasks (for example: nothing in it that the pipeline handles). */
export class PlanError extends MmgridError {
  readonly code = 'PLAN_FAILED' as const;
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return typeof value;
  }
}
