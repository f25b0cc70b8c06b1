import { describe, expect, it } from 'vitest';
import { ASSEMBLE_KIND } from '@mmgrid/core';
import { coordinatorStepWorkerOptions } from '../task-queue.js';

describe("the coordinator's own steps (assembly, stitching)", () => {
  const connection = { host: '127.0.0.1', port: 6390 };

  it('hold a lease and are looked for lapsed as the workers tasks are, not at BullMQ defaults', () => {
    // BullMQ's default is a check every 30 s, and a lapsed lock is moved on the second check
    // that sees it: a replica killed mid-assembly held its job up for about a minute.
    const options = coordinatorStepWorkerOptions(ASSEMBLE_KIND, { connection, prefix: 'grid', concurrency: 4, leaseMs: 2_000, stalledIntervalMs: 500, maxStalledCount: 3 });
    expect(options).toMatchObject({ connection, prefix: 'grid', concurrency: 4, lockDuration: 2_000, stalledInterval: 500, maxStalledCount: 3, autorun: false });
  });
});
