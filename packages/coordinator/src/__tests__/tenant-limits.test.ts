import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobServiceClient, JobState, type Job, type SubmitJobRequest } from '@mmgrid/proto';
import { Coordinator } from '../coordinator.js';
import type { CoordinatorOptions } from '../coordinator-options.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

/** A selftest job: with no worker connected it stays queued, so it holds its place in the quota. */
const SELFTEST: SubmitJobRequest = {
  spec: { inputs: [], prompt: '', pipeline: 'selftest', priority: 0, labels: {}, params: { tasks: '1', taskMs: '0' }, stepsJson: '' },
  idempotencyKey: '',
};

type Answer = { readonly job: Job } | { readonly refused: ServiceError };

/** A submitter of one tenant talking to one replica. */
function submitter(address: string, tenant: string) {
  const client = new JobServiceClient(address, credentials.createInsecure());
  const md = (): Metadata => {
    const m = new Metadata();
    m.set('x-mmgrid-tenant', tenant);
    return m;
  };
  return {
    submit: (): Promise<Answer> =>
      new Promise((resolve, reject) => {
        client.submitJob(SELFTEST, md(), (err, res) => {
          if (err?.code === status.RESOURCE_EXHAUSTED) resolve({ refused: err });
          else if (err) reject(err);
          else if (res?.job) resolve({ job: res.job });
          else reject(new Error('no job in the answer'));
        });
      }),
    cancel: (jobId: string): Promise<Job> =>
      new Promise((resolve, reject) => client.cancelJob({ jobId, reason: 'making room' }, md(), (err, res) => (err ? reject(err) : resolve(res)))),
    list: (): Promise<readonly string[]> =>
      new Promise((resolve, reject) =>
        client.listJobs({ states: [], pipeline: '', tenant: '', pageSize: 500, pageToken: '' }, md(), (err, res) => (err ? reject(err) : resolve((res?.jobs ?? []).map((j) => j.id)))),
      ),
    close: () => client.close(),
  };
}

const refusedFor = (a: Answer): string | undefined => ('refused' in a ? String(a.refused.metadata.get('mmgrid-limit')[0] ?? '') : undefined);

describe.skipIf(!HAS_REDIS_SERVER)('tenant quota and rate across replicas', () => {
  let server: TestRedis;
  let blobDir: string;
  const coordinators: Coordinator[] = [];
  const logger = pino({ level: 'silent' });

  /** Two replicas sharing one Redis (and key prefix), with these limits. */
  async function replicas(keyPrefix: string, limits: CoordinatorOptions): Promise<[string, string]> {
    const started: string[] = [];
    for (const id of ['a', 'b']) {
      const c = new Coordinator({ listen: '127.0.0.1:0', metricsListen: 'off', redisUrl: server.url, keyPrefix, blobDir, coordinatorId: `${keyPrefix}-${id}`, ...limits }, { logger });
      coordinators.push(c);
      started.push((await c.start()).address);
    }
    return [started[0] ?? '', started[1] ?? ''];
  }

  beforeAll(async () => {
    server = await startTestRedis();
    blobDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-limits-'));
  });

  afterAll(async () => {
    for (const c of coordinators) await c.stop();
    await server?.stop();
    if (blobDir) await rm(blobDir, { recursive: true, force: true });
  });

  it('never lets a tenant past its quota of live jobs, however many replicas take its submissions at once', async () => {
    const [a, b] = await replicas('quota', { maxLiveJobsPerTenant: 3, submitRatePerTenant: 10_000, submitBurstPerTenant: 10_000, tenantLimits: { globex: { maxLiveJobs: 1 } } });
    const viaA = submitter(a, 'acme');
    const viaB = submitter(b, 'acme');
    const other = submitter(b, 'globex');
    try {
      const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? viaA : viaB).submit()));
      const accepted = answers.flatMap((x) => ('job' in x ? [x.job.id] : []));
      const refused = answers.filter((x) => 'refused' in x);
      expect(accepted).toHaveLength(3);
      expect(refused).toHaveLength(13);
      for (const r of refused) {
        expect(refusedFor(r)).toBe('maxLiveJobsPerTenant');
        if ('refused' in r) expect(r.refused.details).toBe('tenant acme has 3 jobs queued or running; this grid allows at most 3 per tenant (--max-live-jobs-per-tenant); submit again once one of them has ended');
      }
      // Refused submissions left nothing behind: the tenant's jobs are the three accepted.
      expect([...(await viaA.list())].sort()).toEqual([...accepted].sort());
      // Another tenant's quota is its own: here, one job (--tenant-limits).
      expect('job' in (await other.submit())).toBe(true);
      const otherFull = await other.submit();
      expect(refusedFor(otherFull)).toBe('maxLiveJobsPerTenant');
      if ('refused' in otherFull) expect(otherFull.refused.details).toContain('this grid allows tenant globex at most 1 (--tenant-limits)');

      // A job that ends gives its place back, on whichever replica it ends.
      const [first] = accepted;
      if (first === undefined) throw new Error('nothing accepted');
      expect((await viaB.cancel(first)).state).toBe(JobState.JOB_STATE_CANCELLED);
      const again = await viaA.submit();
      expect('job' in again).toBe(true);
      expect(refusedFor(await viaB.submit())).toBe('maxLiveJobsPerTenant');
      // Refusals are counted by the limit, on the replica that refused.
      let counted = 0;
      for (const c of coordinators) {
        const metric = (await c.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'mmgrid_limit_refusals_total');
        counted += (metric?.values ?? []).filter((v) => v.labels['limit'] === 'maxLiveJobsPerTenant').reduce((sum, v) => sum + v.value, 0);
      }
      expect(counted).toBe(15);
    } finally {
      viaA.close();
      viaB.close();
      other.close();
    }
  });

  it('paces a tenant\'s submissions across replicas, says when to come back, and takes them again then', async () => {
    const [a, b] = await replicas('rate', { submitRatePerTenant: 0.5, submitBurstPerTenant: 2 });
    const viaA = submitter(a, 'acme');
    const viaB = submitter(b, 'acme');
    const other = submitter(a, 'globex');
    try {
      // The burst, taken through both replicas: the next one, on either, is refused.
      expect('job' in (await viaA.submit())).toBe(true);
      expect('job' in (await viaB.submit())).toBe(true);
      const refused = await viaA.submit();
      expect(refusedFor(refused)).toBe('submitRatePerTenant');
      if (!('refused' in refused)) throw new Error('expected a refusal');
      expect(refused.refused.details).toMatch(/^tenant acme is submitting jobs faster than this grid allows: 0\.5 a second, 2 at once \(--submit-rate-per-tenant, --submit-burst-per-tenant\); try again in /);
      const retryAfterMs = Number(refused.refused.metadata.get('retry-after-ms')[0]);
      expect(retryAfterMs).toBeGreaterThan(0);
      // Another tenant is not paced by this one.
      expect('job' in (await other.submit())).toBe(true);
      // After the wait it names, a submission goes through (asked a few times: no timing is asserted).
      await delay(retryAfterMs);
      let answer = await viaB.submit();
      for (let i = 0; i < 20 && 'refused' in answer; i++) {
        await delay(Number(answer.refused.metadata.get('retry-after-ms')[0] ?? 100));
        answer = await viaB.submit();
      }
      expect('job' in answer).toBe(true);
      // The refused submission made no job.
      expect(await viaA.list()).toHaveLength(3);
    } finally {
      viaA.close();
      viaB.close();
      other.close();
    }
  });
});
