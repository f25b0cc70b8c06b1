import { LimitExceededError } from './errors.js';

/**
 * The limits a coordinator enforces, each named by the option that sets it, with the
 * command-line flag and environment variable of `mmgrid coordinator` (docs/security.md,
 * "Limits", has the table). Every refusal says what was asked for, what the grid allows, and
 * which flag changes it, in the same words (see `allows`).
 */
export const LIMIT_OPTIONS = {
  maxBlobBytes: { flag: '--max-blob-bytes', env: 'MMGRID_MAX_BLOB_BYTES' },
  maxMessageBytes: { flag: '--max-message-bytes', env: 'MMGRID_MAX_MESSAGE_BYTES' },
  maxInputsPerJob: { flag: '--max-inputs-per-job', env: 'MMGRID_MAX_INPUTS_PER_JOB' },
  maxPromptChars: { flag: '--max-prompt-chars', env: 'MMGRID_MAX_PROMPT_CHARS' },
  maxTextInputChars: { flag: '--max-text-input-chars', env: 'MMGRID_MAX_TEXT_INPUT_CHARS' },
  maxShards: { flag: '--max-shards', env: 'MMGRID_MAX_SHARDS' },
  maxLiveJobsPerTenant: { flag: '--max-live-jobs-per-tenant', env: 'MMGRID_MAX_LIVE_JOBS_PER_TENANT' },
  submitRatePerTenant: { flag: '--submit-rate-per-tenant', env: 'MMGRID_SUBMIT_RATE_PER_TENANT' },
  submitBurstPerTenant: { flag: '--submit-burst-per-tenant', env: 'MMGRID_SUBMIT_BURST_PER_TENANT' },
} as const satisfies Record<string, { readonly flag: string; readonly env: string }>;

export type LimitName = keyof typeof LIMIT_OPTIONS;

/** The option of per-tenant exceptions to the quota and rate: a YAML or JSON file. */
export const TENANT_LIMITS_OPTION = { flag: '--tenant-limits', env: 'MMGRID_TENANT_LIMITS' } as const;

/** One tenant's quota and rate, and whether they are its own (tenantLimits) or the grid's. */
export interface TenantLimitsOf {
  readonly maxLiveJobs: number;
  readonly submitRate: number;
  readonly submitBurst: number;
  readonly own: boolean;
}

/** Looks up each tenant's quota and rate: its entry in tenantLimits, or the grid's. */
export function tenantLimitsLookup(grid: {
  readonly maxLiveJobsPerTenant: number;
  readonly submitRatePerTenant: number;
  readonly submitBurstPerTenant: number;
  readonly tenantLimits: ReadonlyMap<string, Omit<TenantLimitsOf, 'own'>>;
}): (tenant: string) => TenantLimitsOf {
  const fallback: TenantLimitsOf = { maxLiveJobs: grid.maxLiveJobsPerTenant, submitRate: grid.submitRatePerTenant, submitBurst: grid.submitBurstPerTenant, own: false };
  return (tenant) => {
    const own = grid.tenantLimits.get(tenant);
    return own ? { ...own, own: true } : fallback;
  };
}

/** gRPC trailing metadata of a refusal for a limit: the limit's name (LimitName). */
export const LIMIT_METADATA = 'mmgrid-limit';
/** gRPC trailing metadata of a rate-limit refusal: milliseconds until a retry may succeed. */
export const RETRY_AFTER_METADATA = 'retry-after-ms';

/** "this grid allows at most 256 (--max-inputs-per-job)": the second half of every refusal. */
export function allows(limit: LimitName, max: number, unit = ''): string {
  return `this grid allows at most ${max}${unit === '' ? '' : ` ${unit}`} (${LIMIT_OPTIONS[limit].flag})`;
}

/**
 * The refusal of a request over a limit: "<what was asked>; this grid allows at most <max>
 * (<flag>)". `asked` says what was asked for, with the number: "the job has 300 inputs".
 */
export function limitExceeded(limit: LimitName, actual: number, max: number, asked: string, unit = ''): LimitExceededError {
  return new LimitExceededError(limit, max, `${asked}; ${allows(limit, max, unit)}`, { actual });
}

/** What a job spec is checked against before it is validated (the rest of its shape has fixed bounds). */
export interface SpecLimits {
  readonly maxInputsPerJob: number;
  readonly maxPromptChars: number;
  readonly maxTextInputChars: number;
}

/** A job spec as it arrives (specFromProto), before validation: only what the limits count. */
export interface RawSpecSizes {
  readonly inputs: readonly { readonly name?: unknown; readonly source?: unknown }[];
  readonly prompt?: unknown;
}

/**
 * Refuses a spec over the job limits (RESOURCE_EXHAUSTED, naming the limit) before it is
 * validated, so a spec that is too large is told so rather than being checked field by field.
 * Characters are counted as JavaScript does (UTF-16 code units), as the validation does.
 */
export function checkSpecLimits(raw: RawSpecSizes, limits: SpecLimits): void {
  if (raw.inputs.length > limits.maxInputsPerJob) {
    throw limitExceeded('maxInputsPerJob', raw.inputs.length, limits.maxInputsPerJob, `the job has ${raw.inputs.length} inputs`);
  }
  if (typeof raw.prompt === 'string' && raw.prompt.length > limits.maxPromptChars) {
    throw limitExceeded('maxPromptChars', raw.prompt.length, limits.maxPromptChars, `the prompt has ${raw.prompt.length} characters`, 'characters');
  }
  raw.inputs.forEach((input, i) => {
    const source = input.source as { readonly type?: unknown; readonly text?: unknown } | undefined;
    if (source?.type === 'text' && typeof source.text === 'string' && source.text.length > limits.maxTextInputChars) {
      const name = typeof input.name === 'string' ? ` "${input.name}"` : '';
      throw limitExceeded('maxTextInputChars', source.text.length, limits.maxTextInputChars, `inputs[${i}]${name} is a text of ${source.text.length} characters`, 'characters');
    }
  });
}

/**
 * The refusal of a job (or a retry) whose tenant has as many live jobs as its quota allows
 * (`own`: the tenant's own quota, from --tenant-limits).
 */
export function liveJobsFull(tenant: string, live: number, max: number, what: 'submit' | 'retry', own = false): LimitExceededError {
  const again = what === 'submit' ? 'submit again' : 'retry the job';
  const allowed = own ? `this grid allows tenant ${tenant} at most ${max} (${TENANT_LIMITS_OPTION.flag})` : allows('maxLiveJobsPerTenant', max, 'per tenant');
  return new LimitExceededError('maxLiveJobsPerTenant', max, `tenant ${tenant} has ${live} jobs queued or running; ${allowed}; ${again} once one of them has ended`, {
    actual: live,
  });
}

/** The refusal of a submission over its tenant's rate: when to try again, in words and in `retryAfterMs`. */
export function submitRateExceeded(tenant: string, rate: number, burst: number, retryAfterMs: number, own = false): LimitExceededError {
  const after = Math.max(1, Math.ceil(retryAfterMs));
  const perSecond = Number.isInteger(rate) ? String(rate) : rate.toPrecision(3).replace(/\.?0+$/, '');
  return new LimitExceededError(
    'submitRatePerTenant',
    rate,
    `tenant ${tenant} is submitting jobs faster than this grid allows: ${perSecond} a second, ${burst} at once ` +
      `(${own ? TENANT_LIMITS_OPTION.flag : `${LIMIT_OPTIONS.submitRatePerTenant.flag}, ${LIMIT_OPTIONS.submitBurstPerTenant.flag}`}); try again in ${after < 1000 ? `${after} ms` : `${(after / 1000).toFixed(1)} s`}`,
    { retryAfterMs: after },
  );
}
