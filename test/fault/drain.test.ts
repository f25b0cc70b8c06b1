import { afterEach, describe, expect, it } from 'vitest';
import { audit, firstRunningTask, submitSelftests } from '../helpers/audit.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { exited } from '../helpers/process.js';
import { FAST_LEASES, report } from './faults.js';

describe('a worker told to stop (SIGTERM) drains', () => {
  let tg: TestGrid | undefined;

  afterEach(async () => {
    await tg?.stop();
    tg = undefined;
  });

  it('finishes a task that ends within the grace period, takes no new one, and exits 0', async () => {
    tg = await startTestGrid({ workers: 1, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=1', '--drain-grace-ms', '20000'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '1500' });
    if (!job) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, job.id);
    const draining = await tg.workerProcess(worker);
    const code = exited(draining);
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
    tg = await startTestGrid({ workers: 2, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=1', '--drain-grace-ms', '300'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '4000' });
    if (!job) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, job.id);
    const draining = await tg.workerProcess(worker);
    const code = exited(draining);
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
    tg = await startTestGrid({ workers: 2, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=1', '--drain-grace-ms', '60000'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '3000' });
    if (!job) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, job.id);
    const impatient = await tg.workerProcess(worker);
    const code = exited(impatient);
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
