import { describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { QueueStats } from '@mmgrid/proto';
import { aggregateByKind, formatJobList, formatQueues } from '../fleet-format.js';
import { parseStates } from '../commands/fleet.js';
import { ago, span } from '../units.js';

const NOW = Date.parse('2026-01-02T03:04:05Z');

function job(overrides: Partial<JobView>): JobView {
  return {
    id: '01JOB',
    state: 'completed',
    tenant: 'default',
    pipeline: 'describe',
    createdAt: '2026-01-02T03:00:00.000Z',
    finishedAt: '2026-01-02T03:00:04.200Z',
    prompt: '',
    inputs: [],
    tasks: [],
    result: null,
    error: null,
    generation: 0,
    ...overrides,
  };
}

function input(name: string): JobView['inputs'][number] {
  return { name, modality: 'text', mediaType: null, sha256: null, size: null };
}

function queue(overrides: Partial<QueueStats>): QueueStats {
  return { queue: 'selftest.sleep@default', kind: 'selftest.sleep', tenant: 'default', waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0, waitingChildren: 0, oldestWaitingAgeMs: 0, ...overrides };
}

describe('span and ago (human times)', () => {
  it.each([
    [850, '850ms'],
    [4_200, '4.2s'],
    [42_000, '42s'],
    [192_000, '3m12s'],
    [2 * 3_600_000 + 5 * 60_000, '2h05m'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d04h'],
    [-5, '0ms'],
  ])('%i ms is %s', (ms, text) => expect(span(ms)).toBe(text));

  it('says how long ago, "-" for never', () => {
    expect(ago(NOW - 2_400, NOW)).toBe('2s ago');
    expect(ago(NOW - 192_500, NOW)).toBe('3m12s ago');
    expect(ago(NOW - 12_000, NOW)).toBe('12s ago');
    expect(ago(NOW - 10, NOW)).toBe('just now');
    expect(ago(0, NOW)).toBe('-');
  });
});

describe('formatJobList (mmgrid list)', () => {
  it('prints a row a job: inputs by name (counted past two), ended jobs with their duration, live ones with their age', () => {
    const text = formatJobList(
      [
        job({ id: 'J3', state: 'running', finishedAt: null, createdAt: '2026-01-02T03:00:53.000Z', inputs: [input('a.png'), input('b.wav'), input('c.txt')] }),
        job({ id: 'J2', state: 'failed', pipeline: 'selftest', inputs: [input('receipt-photo-from-the-shop.png'), input('memo.wav')] }),
        job({ id: 'J1' }),
      ],
      { tenant: false, nowMs: NOW },
    );
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+PIPELINE\s+INPUTS\s+CREATED\s+AGE\/DURATION$/);
    expect(lines[1]).toMatch(/^J3\s+running\s+describe\s+3 inputs\s+2026-01-02 03:00:53Z\s+3m12s$/);
    expect(lines[2]).toMatch(/^J2\s+failed\s+selftest\s+receipt-photo-from-the-…, memo\.wav\s+2026-01-02 03:00:00Z\s+took 4\.2s$/);
    expect(lines[3]).toMatch(/^J1\s+completed\s+describe\s+-\s+2026-01-02 03:00:00Z\s+took 4\.2s$/);
  });

  it('shows the tenant when asked for (an admin listing a tenant) or when the jobs\' tenants differ', () => {
    expect(formatJobList([job({})], { tenant: false, nowMs: NOW })).not.toContain('TENANT');
    expect(formatJobList([job({ tenant: 'acme' })], { tenant: true, nowMs: NOW })).toMatch(/^01JOB\s+completed\s+describe\s+acme\s+/m);
    expect(formatJobList([job({ tenant: 'acme' }), job({ tenant: 'globex' })], { tenant: false, nowMs: NOW })).toMatch(/^ID\s+STATE\s+PIPELINE\s+TENANT\s+/);
  });

  it('says so when there are no jobs', () => {
    expect(formatJobList([], { tenant: false, nowMs: NOW })).toBe('no jobs');
  });
});

describe('parseStates (mmgrid list --state)', () => {
  it('takes repeated and comma-separated states, once each', () => {
    expect(parseStates(['failed,cancelled', 'FAILED', ' queued '])).toEqual(['failed', 'cancelled', 'queued']);
    expect(parseStates([])).toEqual([]);
  });

  it('refuses a state that is not one, naming the states', () => {
    expect(() => parseStates(['done'])).toThrow('--state "done" is not a job state; the states are queued, running, completed, failed, cancelled');
  });
});

describe('formatQueues (mmgrid queues)', () => {
  const queues = [
    queue({ queue: 'image.ocr@acme', kind: 'image.ocr', tenant: 'acme', active: 1 }),
    queue({ queue: 'selftest.sleep#3f2a9c0d1e4b5a67@acme', kind: 'selftest.sleep', tenant: 'acme', waiting: 2, oldestWaitingAgeMs: 192_000 }),
    queue({ queue: 'selftest.sleep@default', kind: 'selftest.sleep', waiting: 1, active: 3, delayed: 1, failed: 4, oldestWaitingAgeMs: 5_000 }),
  ];

  it('adds up each kind\'s queues, the oldest wait being the oldest of theirs', () => {
    expect(aggregateByKind(queues)).toEqual([
      { kind: 'image.ocr', waiting: 0, active: 1, delayed: 0, failed: 0, oldestWaitingAgeMs: 0 },
      { kind: 'selftest.sleep', waiting: 3, active: 3, delayed: 1, failed: 4, oldestWaitingAgeMs: 192_000 },
    ]);
    const text = formatQueues(queues, { byQueue: false });
    expect(text).toMatch(/^KIND\s+WAITING\s+ACTIVE\s+DELAYED\s+FAILED\s+OLDEST$/m);
    expect(text).toMatch(/^image\.ocr\s+0\s+1\s+0\s+0\s+-$/m);
    expect(text).toMatch(/^selftest\.sleep\s+3\s+3\s+1\s+4\s+3m12s$/m);
  });

  it('shows one row a queue with its requirement class and tenant under --by-queue', () => {
    const text = formatQueues(queues, { byQueue: true });
    expect(text).toMatch(/^QUEUE\s+KIND\s+CLASS\s+TENANT\s+WAITING\s+ACTIVE\s+DELAYED\s+FAILED\s+OLDEST$/m);
    expect(text).toMatch(/^selftest\.sleep#3f2a9c0d1e4b5a67@acme\s+selftest\.sleep\s+3f2a9c0d1e4b5a67\s+acme\s+2\s+0\s+0\s+0\s+3m12s$/m);
    expect(text).toMatch(/^selftest\.sleep@default\s+selftest\.sleep\s+-\s+default\s+1\s+3\s+1\s+4\s+5\.0s$/m);
  });

  it('says so when there are no queues', () => {
    expect(formatQueues([], { byQueue: false })).toBe('no queues');
  });
});
