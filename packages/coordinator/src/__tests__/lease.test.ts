import { describe, expect, it } from 'vitest';
import { bullJobIdOf, leaseToProto, lockTokenOf, parseBullJobId, parseTaskRef, taskRefOf } from '../lease.js';

describe('task refs', () => {
  it.each([
    ['image.ocr@default', '01JABCDEFGHJKMNPQRSTVWXYZ0-t1'],
    ['selftest.sleep#0a1b2c3d@acme', '01JABCDEFGHJKMNPQRSTVWXYZ0-t12.3'],
    ['job.assemble', '01JABCDEFGHJKMNPQRSTVWXYZ0-t7'],
  ])('round-trips %j / %j', (queue, bullJobId) => {
    expect(parseTaskRef(taskRefOf(queue, bullJobId))).toEqual({ queue, bullJobId });
  });

  it.each(['', 'no-slash', '/only-job', 'only-queue/'])('refuses %j', (ref) => {
    expect(parseTaskRef(ref)).toBeUndefined();
  });
});

describe('BullMQ job ids', () => {
  it.each([
    ['01JABCDEFGHJKMNPQRSTVWXYZ0', 't1', 0, '01JABCDEFGHJKMNPQRSTVWXYZ0-t1'],
    ['01JABCDEFGHJKMNPQRSTVWXYZ0', 't10', 0, '01JABCDEFGHJKMNPQRSTVWXYZ0-t10'],
    ['01JABCDEFGHJKMNPQRSTVWXYZ0', 't3', 2, '01JABCDEFGHJKMNPQRSTVWXYZ0-t3.2'],
  ])('job %s task %s generation %i is %s, and parses back', (jobId, taskId, generation, id) => {
    expect(bullJobIdOf(jobId, taskId, generation)).toBe(id);
    expect(parseBullJobId(id)).toEqual({ jobId, taskId, generation });
  });

  it.each(['', 'no-task-', '-t1', 'a-b-t1', 'job-t1.x', 'job-t1.'])('refuses %j', (id) => {
    expect(parseBullJobId(id)).toBeUndefined();
  });

  it('parses a whole task ref down to the job, the task and the generation', () => {
    const ref = taskRefOf('audio.analyze@default', bullJobIdOf('01JOB', 't4', 1));
    const parsed = parseTaskRef(ref);
    expect(parsed && parseBullJobId(parsed.bullJobId)).toEqual({ jobId: '01JOB', taskId: 't4', generation: 1 });
  });
});

describe('leases', () => {
  it('makes the BullMQ lock token from the fencing token and the lease id', () => {
    expect(lockTokenOf('abc', 42)).toBe('42.abc');
  });

  it('turns a grant into the Lease message', () => {
    expect(leaseToProto({ leaseId: 'L', fencingToken: 7, lockToken: '7.L' }, 'q@default/j-t1', 5000)).toEqual({
      leaseId: 'L',
      fencingToken: 7,
      taskRef: 'q@default/j-t1',
      durationMs: 5000,
    });
  });
});
