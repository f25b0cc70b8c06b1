import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MmgridClient, MmgridClientError, type JobView } from '@mmgrid/client';
import { firstRunningTask, submitSelftests } from '../helpers/audit.js';
import { runCli } from '../helpers/cli.js';
import { writeFakeNvidiaSmi } from '../helpers/fake-nvidia-smi.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { eventually } from '../helpers/process.js';
import { FAST_LEASES, report } from './faults.js';

describe('scheduling: fairness, matchmaking, retries and cancel', () => {
  let tg: TestGrid | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await tg?.stop();
    tg = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("fairness: tenant A queues 5,000 tasks, tenant B then 10; B's tasks start before A's backlog drains", async () => {
    tg = await startTestGrid({ workers: 2, coordinatorArgs: FAST_LEASES });
    const a = new MmgridClient({ address: tg.grid.address, tenant: 'tenant-a' });
    const b = new MmgridClient({ address: tg.grid.address, tenant: 'tenant-b' });
    try {
      const backlog = await submitSelftests(a, 10, { tasks: '500', taskMs: '20' });
      await firstRunningTask(a, backlog[0]?.id ?? '');
      const submittedAt = Date.now();
      const [late] = await submitSelftests(b, 1, { tasks: '10', taskMs: '20' });
      // From here B's tasks are queued: the next turn of the slots must include them.
      const acceptedAt = Date.now();
      const done = await b.waitForJob(late?.id ?? '');
      const finishedAt = Date.now();
      const stats = await a.queueStats();
      const waitingA = stats.queues.find((q) => q.queue === 'selftest.sleep@tenant-a')?.waiting ?? 0;

      const startsOf = (job: JobView): number[] => job.tasks.filter((t) => t.startedAt).map((t) => Date.parse(t.startedAt ?? ''));
      const firstB = Math.min(...startsOf(done));
      const aJobs = await Promise.all(backlog.map((j) => a.getJob(j.id)));
      const aStartedBetween = aJobs.flatMap(startsOf).filter((t) => t > acceptedAt && t < firstB).length;
      report('fairness', {
        bTasks: 10,
        bSubmitMs: acceptedAt - submittedAt,
        bDoneMs: finishedAt - acceptedAt,
        aWaitingWhenBDone: waitingA,
        aStartedAfterBQueuedBeforeFirstB: aStartedBetween,
        slots: 8,
      });
      expect(done.state).toBe('completed');
      expect(waitingA).toBeGreaterThan(4000);
      // B's first task took at most one turn of the 8 slots.
      expect(aStartedBetween).toBeLessThanOrEqual(8);
      for (const job of backlog) await a.cancel(job.id);
    } finally {
      a.close();
      b.close();
    }
  });

  it('a task no connected worker can run waits, explain says why, and it runs when a capable worker joins', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-gpu-'));
    tg = await startTestGrid({ workers: 1, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=2', '--nvidia-smi', path.join(dir, 'none')] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '100', minVramMiB: String(24 * 1024) });
    if (!job) throw new Error('no job');

    const before = (await tg.client.explain(job.id)).find((t) => t.kind === 'selftest.sleep');
    expect(before?.state).toBe('queued');
    expect(before?.capableWorkers).toBe(0);
    expect(before?.reason).toBe('needs 24 GiB free VRAM; none of the 1 workers offering selftest.sleep has a GPU');

    const small = await writeFakeNvidiaSmi(path.join(dir, 'small'), [{ name: 'NVIDIA GeForce RTX 3060', memoryMiB: 12 * 1024, computeCapability: '8.6' }]);
    await tg.grid.addWorker(['--nvidia-smi', small]);
    const withSmall = (await tg.client.explain(job.id)).find((t) => t.kind === 'selftest.sleep');
    expect(withSmall?.reason).toBe('needs 24 GiB VRAM; largest connected: 11.5 GiB on 1 worker');
    expect((await tg.client.getJob(job.id)).state).toBe('queued');
    const cli = await runCli(['explain', job.id], { MMGRID_COORDINATOR: tg.grid.address });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('needs 24 GiB VRAM; largest connected: 11.5 GiB on 1 worker');

    const big = await writeFakeNvidiaSmi(path.join(dir, 'big'), [{ name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 80 * 1024, computeCapability: '8.0' }]);
    await tg.grid.addWorker(['--nvidia-smi', big]);
    const done = await tg.client.waitForJob(job.id);
    const task = done.tasks.find((t) => t.kind === 'selftest.sleep');
    report('unrunnable until a capable worker joins', { ranOn: task?.workerName ?? '?', reasonBefore: before?.reason ?? '' });
    expect(done.state).toBe('completed');
    expect(task?.workerName).toBe('worker-3');
  });

  it('retries with backoff, dead-letters after the last attempt, and `mmgrid retry` runs the failed tasks again', async () => {
    tg = await startTestGrid({ workers: 1, coordinatorArgs: FAST_LEASES });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '10', failAttempts: '4' });
    if (!job) throw new Error('no job');
    const failed = await tg.client.waitForJob(job.id);
    expect(failed.state).toBe('failed');
    const dead = failed.tasks.filter((t) => t.kind === 'selftest.sleep');
    for (const task of dead) {
      expect(task.state).toBe('failed');
      expect(task.attempts).toBe(3);
      expect(task.error?.message).toBe('failing on purpose on attempt 3 of the first 4');
    }
    const explained = await tg.client.explain(job.id);
    expect(explained.find((t) => t.kind === 'selftest.sleep')?.reason).toMatch(/^failed after 3 attempts: TASK_FAILED: failing on purpose/);
    const stats = await tg.client.queueStats();
    expect(stats.queues.find((q) => q.queue === 'selftest.sleep@default')?.failed).toBe(2);

    const env = { MMGRID_COORDINATOR: tg.grid.address };
    const retried = await runCli(['retry', job.id, '--wait', '--json'], env);
    expect(retried.code).toBe(0);
    const done = JSON.parse(retried.stdout) as JobView;
    report('retry after dead letter', { generation: done.generation, attempts: done.tasks.map((t) => t.attempts).join('/') });
    expect(done.state).toBe('completed');
    expect(done.generation).toBe(1);
    for (const task of done.tasks.filter((t) => t.kind === 'selftest.sleep')) expect(task.attempts).toBe(5);

    // A completed job has nothing to retry: a clear refusal, exit code 2.
    const again = await runCli(['retry', job.id], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('nothing to retry');
    await expect(tg.client.retry(job.id)).rejects.toBeInstanceOf(MmgridClientError);
  });

  it('cancel stops running tasks on their workers, removes queued ones, and frees the slots', async () => {
    tg = await startTestGrid({ workers: 1, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=2'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '4', taskMs: '60000' });
    if (!job) throw new Error('no job');
    let running = 0;
    for await (const event of tg.client.watch(job.id)) {
      if (event.type === 'task' && event.state === 'running') running += 1;
      if (running === 2) break;
    }
    const cancelled = await tg.client.cancel(job.id, 'no longer needed');
    expect(cancelled.state).toBe('cancelled');
    await eventually(async () => (await tg?.client.getJob(job.id))?.tasks.filter((t) => t.kind === 'selftest.sleep').every((t) => t.state === 'cancelled') ?? false, 'every task is cancelled');
    await eventually(async () => ((await tg?.client.listWorkers())?.workers[0]?.slots.find((s) => s.kind === 'selftest.sleep')?.busy ?? -1) === 0, 'the slots are free');

    // Both slots take work again at once.
    const [next] = await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '500' });
    const done = await tg.client.waitForJob(next?.id ?? '');
    const starts = done.tasks.filter((t) => t.kind === 'selftest.sleep').map((t) => Date.parse(t.startedAt ?? ''));
    report('cancel', { runningWhenCancelled: running, nextStartsApartMs: Math.abs((starts[0] ?? 0) - (starts[1] ?? 0)) });
    expect(done.state).toBe('completed');
    expect(Math.abs((starts[0] ?? 0) - (starts[1] ?? 0))).toBeLessThan(500);
  });
});
