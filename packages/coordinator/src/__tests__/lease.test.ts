import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Keys } from '../keys.js';
import { bullJobIdOf, grantLease, leaseToProto, lockTokenOf, parseBullJobId, parseTaskRef, taskRefOf } from '../lease.js';

describe('task refs', () => {
  const cases: { kind: string; bullJobId: string }[] = [
    { kind: 'image.ocr', bullJobId: '01JABCDEFGHJKMNPQRSTVWXYZ0-t1' },
    { kind: 'audio.analyze', bullJobId: '01JABCDEFGHJKMNPQRSTVWXYZ0-t12' },
    { kind: 'fusion.report', bullJobId: 'job-with-dashes-t3' },
    { kind: 'x', bullJobId: 'y' },
    // Only the first slash separates: a job id may hold more.
    { kind: 'text.stats', bullJobId: 'a/b-t1' },
  ];
  it.each(cases)('round-trips $kind / $bullJobId', ({ kind, bullJobId }) => {
    const ref = taskRefOf(kind, bullJobId);
    expect(ref).toBe(`${kind}/${bullJobId}`);
    expect(parseTaskRef(ref)).toEqual({ kind, bullJobId });
  });

  it.each(['', '/', 'no-slash', '/01J-t1', 'image.ocr/', '//'])('refuses the malformed ref %j', (ref) => {
    expect(parseTaskRef(ref)).toBeUndefined();
  });
});

describe('BullMQ job ids', () => {
  const cases: { jobId: string; taskId: string }[] = [
    { jobId: '01JABCDEFGHJKMNPQRSTVWXYZ0', taskId: 't1' },
    { jobId: '01JABCDEFGHJKMNPQRSTVWXYZ0', taskId: 't10' },
    // The task id is after the last dash, so job ids may hold dashes (a UUID, for example).
    { jobId: '8c1f7e2a-1b2c-4d5e-8f90-123456789abc', taskId: 't2' },
    { jobId: 'j', taskId: 't' },
  ];
  it.each(cases)('round-trips $jobId and $taskId', ({ jobId, taskId }) => {
    const id = bullJobIdOf(jobId, taskId);
    expect(id).toBe(`${jobId}-${taskId}`);
    expect(parseBullJobId(id)).toEqual({ jobId, taskId });
  });

  it.each(['', '-', 'nodash', '-t1', '01JABC-', 'a-'])('refuses the malformed id %j', (id) => {
    expect(parseBullJobId(id)).toBeUndefined();
  });

  it('parses a whole task ref down to the job and the task', () => {
    const ref = taskRefOf('image.inspect', bullJobIdOf('01JXYZ', 't4'));
    const parsed = parseTaskRef(ref);
    expect(parsed).toEqual({ kind: 'image.inspect', bullJobId: '01JXYZ-t4' });
    expect(parseBullJobId(parsed?.bullJobId ?? '')).toEqual({ jobId: '01JXYZ', taskId: 't4' });
  });
});

describe('lock tokens and leases', () => {
  const cases: { leaseId: string; fencingToken: number; lockToken: string }[] = [
    { leaseId: 'abc', fencingToken: 1, lockToken: '1.abc' },
    { leaseId: 'Zm9vYmFyYmF6cXV4', fencingToken: 42, lockToken: '42.Zm9vYmFyYmF6cXV4' },
    { leaseId: 'a-b_c', fencingToken: 9_007_199_254_740_991, lockToken: '9007199254740991.a-b_c' },
  ];
  it.each(cases)('writes the lock token of lease $leaseId at fence $fencingToken as $lockToken', ({ leaseId, fencingToken, lockToken }) => {
    expect(lockTokenOf(leaseId, fencingToken)).toBe(lockToken);
  });

  it('grants leases with increasing fencing tokens and random ids', async () => {
    let counter = 0;
    const incremented: string[] = [];
    const redis = {
      incr: (key: string): Promise<number> => {
        incremented.push(key);
        counter += 1;
        return Promise.resolve(counter);
      },
    } as unknown as Redis;
    const keys = new Keys('grid');
    const grants = [await grantLease(redis, keys), await grantLease(redis, keys), await grantLease(redis, keys)];
    expect(incremented).toEqual(['grid:fence', 'grid:fence', 'grid:fence']);
    expect(grants.map((g) => g.fencingToken)).toEqual([1, 2, 3]);
    for (const grant of grants) {
      // 12 random bytes in base64url: 16 characters, no padding.
      expect(grant.leaseId).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(grant.lockToken).toBe(`${grant.fencingToken}.${grant.leaseId}`);
      expect(grant.lockToken).toMatch(/^\d+\.[A-Za-z0-9_-]{16}$/);
    }
    expect(new Set(grants.map((g) => g.leaseId)).size).toBe(3);
  });

  it('copies a grant into the protocol Lease', () => {
    const grant = { leaseId: 'abc', fencingToken: 7, lockToken: '7.abc' };
    expect(leaseToProto(grant, 'image.ocr/01J-t1', 30_000)).toEqual({ leaseId: 'abc', fencingToken: 7, taskRef: 'image.ocr/01J-t1', durationMs: 30_000 });
  });
});
