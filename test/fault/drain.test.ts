import { afterEach, describe, expect, it } from 'vitest';
import { audit, firstRunningTask, submitSelftests } from '../helpers/audit.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { exited } from '../helpers/process.js';
import { FAST_LEASES, report } from './faults.js';

describe('a worker told to stop (SIGTERM) drains', () => {
  /** The grid a test started, stopped after it. */
  let started: TestGrid | undefined;

  afterEach(async () => {
    await started?.stop();
    started = undefined;
  });

  /**
   * A grid of `workers` one-slot workers that drain for `graceMs`, running one selftest job
   * of `tasks` tasks of `taskMs` each: the grid, the job, the worker that runs its first task,
   * that worker's process and the exit code it will have (the test sends the signals).
   */
  async function runningJob(workers: number, graceMs: number, params: { tasks: string; taskMs: string }) {
    const tg = await startTestGrid({ workers, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=1', '--drain-grace-ms', String(graceMs)] });
    started = tg;
    const [job] = await submitSelftests(tg.client, 1, params);
    if (!job) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, job.id);
    const child = await tg.workerProcess(worker);
    return { tg, job, worker, child, code: exited(child) };
  }

  it('finishes a task that ends within the grace period, takes no new one, and exits 0', async () => {
    const { tg, job, child: draining, code } = await runningJob(1, 20_000, { tasks: '2', taskMs: '1500' });
    draining.kill('SIGTERM');
    expect(await code).toBe(0);

    // One task finished here; the other was never taken. A new worker runs it.
    const midway = await tg.client.getJob(job.id);
    const states = midway.tasks.filter((t) => t.kind === 'selftest.sleep').map((t) => t.state).sort();
    await tg.grid.addWorker(['--slots', 'selftest.sleep=1']);
    const done = await tg.client.waitForJob(job.id);
    const result = await audit(tg.grid.redisUrl, [done]);
    report('drain within grace', { ...result, statesWhenExited: states.join('/') });
    expect(states).toEqual(['queued', 'succeeded']);
    expect(done.state).toBe('completed');
    const tasks = done.tasks.filter((t) => t.kind === 'selftest.sleep');
    expect(tasks.map((t) => t.attempts)).toEqual([1, 1]);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
  });

  it('hands back a task that outlasts the grace period: it runs elsewhere, once, and the worker exits 0', async () => {
    const { tg, job, worker, child: draining, code } = await runningJob(2, 300, { tasks: '1', taskMs: '4000' });
    draining.kill('SIGTERM');
    expect(await code).toBe(0);
    const done = await tg.client.waitForJob(job.id);
    const task = done.tasks.find((t) => t.kind === 'selftest.sleep');
    const result = await audit(tg.grid.redisUrl, [done]);
    report('drain past grace', { ...result, ranOn: task?.workerName ?? '?', attempts: task?.attempts ?? 0 });
    expect(done.state).toBe('completed');
    expect(task?.worker).not.toBe(worker);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.uncommitted).toBe(0);
  });

  it('stops at once on a second signal (exit 130); the task runs elsewhere', async () => {
    const { tg, job, child: impatient, code } = await runningJob(2, 60_000, { tasks: '1', taskMs: '3000' });
    impatient.kill('SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    impatient.kill('SIGINT');
    expect(await code).toBe(130);
    const done = await tg.client.waitForJob(job.id);
    const result = await audit(tg.grid.redisUrl, [done]);
    expect(done.state).toBe('completed');
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
  });
});
