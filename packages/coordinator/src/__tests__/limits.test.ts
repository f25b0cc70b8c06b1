import { Metadata, status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../errors.js';
import { toServiceError } from '../grpc-errors.js';
import { checkSpecLimits, LIMIT_OPTIONS, liveJobsFull, submitRateExceeded, tenantLimitsLookup, type RawSpecSizes, type SpecLimits } from '../limits.js';

const LIMITS: SpecLimits = { maxInputsPerJob: 3, maxPromptChars: 10, maxTextInputChars: 20 };
const text = (name: string, chars: number): RawSpecSizes['inputs'][number] => ({ name, source: { type: 'text', text: 'x'.repeat(chars) } });
const blob = (name: string): RawSpecSizes['inputs'][number] => ({ name, source: { type: 'blob', blob: { sha256: 'a'.repeat(64), size: 1 } } });

function refusal(fn: () => unknown): LimitExceededError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LimitExceededError) return err;
    throw err;
  }
  throw new Error('expected a LimitExceededError');
}

describe('checkSpecLimits', () => {
  it('accepts a spec at every limit', () => {
    expect(() => checkSpecLimits({ inputs: [text('a', 20), blob('b'), blob('c')], prompt: 'x'.repeat(10) }, LIMITS)).not.toThrow();
    expect(() => checkSpecLimits({ inputs: [] }, LIMITS)).not.toThrow();
  });

  const cases: { name: string; spec: RawSpecSizes; limit: string; actual: number; max: number; message: string }[] = [
    {
      name: 'too many inputs',
      spec: { inputs: [blob('a'), blob('b'), blob('c'), blob('d')] },
      limit: 'maxInputsPerJob',
      actual: 4,
      max: 3,
      message: 'the job has 4 inputs; this grid allows at most 3 (--max-inputs-per-job)',
    },
    {
      name: 'a long prompt',
      spec: { inputs: [], prompt: 'x'.repeat(11) },
      limit: 'maxPromptChars',
      actual: 11,
      max: 10,
      message: 'the prompt has 11 characters; this grid allows at most 10 characters (--max-prompt-chars)',
    },
    {
      name: 'a long text input',
      spec: { inputs: [blob('a'), text('notes', 21)] },
      limit: 'maxTextInputChars',
      actual: 21,
      max: 20,
      message: 'inputs[1] "notes" is a text of 21 characters; this grid allows at most 20 characters (--max-text-input-chars)',
    },
  ];
  it.each(cases)('refuses $name, naming the limit, the value asked for, the maximum and its flag', ({ spec, limit, actual, max, message }) => {
    const err = refusal(() => checkSpecLimits(spec, LIMITS));
    expect(err.code).toBe('RESOURCE_EXHAUSTED');
    expect(err.limit).toBe(limit);
    expect(err.actual).toBe(actual);
    expect(err.max).toBe(max);
    expect(err.message).toBe(message);
  });
});

describe('quota and rate refusals', () => {
  it('says how many live jobs the tenant has and what to do', () => {
    const err = liveJobsFull('acme', 5, 5, 'submit');
    expect(err.limit).toBe('maxLiveJobsPerTenant');
    expect(err.message).toBe('tenant acme has 5 jobs queued or running; this grid allows at most 5 per tenant (--max-live-jobs-per-tenant); submit again once one of them has ended');
    expect(liveJobsFull('acme', 5, 5, 'retry').message).toMatch(/retry the job once one of them has ended$/);
    // A tenant's own quota names the option that gave it.
    expect(liveJobsFull('acme', 50, 50, 'submit', true).message).toBe(
      'tenant acme has 50 jobs queued or running; this grid allows tenant acme at most 50 (--tenant-limits); submit again once one of them has ended',
    );
  });

  it('says when to try again, in words and in retryAfterMs', () => {
    const soon = submitRateExceeded('acme', 20, 100, 49.2);
    expect(soon.limit).toBe('submitRatePerTenant');
    expect(soon.retryAfterMs).toBe(50);
    expect(soon.message).toBe('tenant acme is submitting jobs faster than this grid allows: 20 a second, 100 at once (--submit-rate-per-tenant, --submit-burst-per-tenant); try again in 50 ms');
    const later = submitRateExceeded('acme', 0.25, 1, 3_500);
    expect(later.message).toContain('0.25 a second, 1 at once');
    expect(later.message).toMatch(/try again in 3\.5 s$/);
    expect(submitRateExceeded('acme', 1, 1, 0).retryAfterMs).toBe(1);
    expect(submitRateExceeded('acme', 5, 10, 100, true).message).toContain('5 a second, 10 at once (--tenant-limits)');
  });
});

describe('a limit refusal as a gRPC status', () => {
  const logger = pino({ level: 'silent' });

  it('is RESOURCE_EXHAUSTED with its message, the limit and the retry delay in trailing metadata', () => {
    const sent = toServiceError(submitRateExceeded('acme', 2, 4, 1_200), logger, 'SubmitJob');
    expect(sent.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(sent.details).toContain('try again in 1.2 s');
    expect(sent.metadata).toBeInstanceOf(Metadata);
    expect(sent.metadata?.get('mmgrid-limit')).toEqual(['submitRatePerTenant']);
    expect(sent.metadata?.get('retry-after-ms')).toEqual(['1200']);
  });

  it('carries no retry delay for a limit that waiting does not lift', () => {
    const sent = toServiceError(liveJobsFull('acme', 2, 2, 'submit'), logger, 'SubmitJob');
    expect(sent.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(sent.metadata?.get('mmgrid-limit')).toEqual(['maxLiveJobsPerTenant']);
    expect(sent.metadata?.get('retry-after-ms')).toEqual([]);
  });
});

describe('tenantLimitsLookup', () => {
  it('gives a tenant its own limits, and every other tenant the grid\'s', () => {
    const of = tenantLimitsLookup({
      maxLiveJobsPerTenant: 10,
      submitRatePerTenant: 2,
      submitBurstPerTenant: 4,
      tenantLimits: new Map([['acme', { maxLiveJobs: 500, submitRate: 0.5, submitBurst: 4 }]]),
    });
    expect(of('acme')).toEqual({ maxLiveJobs: 500, submitRate: 0.5, submitBurst: 4, own: true });
    expect(of('globex')).toEqual({ maxLiveJobs: 10, submitRate: 2, submitBurst: 4, own: false });
  });
});

describe('LIMIT_OPTIONS', () => {
  it('names each limit by a --max- or --submit- flag and an MMGRID_ variable derived from its option', () => {
    for (const [option, { flag, env }] of Object.entries(LIMIT_OPTIONS)) {
      const kebab = option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      expect(flag).toBe(`--${kebab}`);
      expect(env).toBe(`MMGRID_${kebab.replace(/-/g, '_').toUpperCase()}`);
    }
  });
});
