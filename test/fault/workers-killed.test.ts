import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audit, firstRunningTask, submitSelftests, waitForAll } from '../helpers/audit.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { exited } from '../helpers/process.js';
import { FAST_LEASES, report } from './faults.js';

describe('kill -9 random workers while 200 jobs run', () => {
  let tg: TestGrid;

  beforeAll(async () => {
    tg = await startTestGrid({ workers: 4, coordinatorArgs: [...FAST_LEASES, '--max-stalled-count', '5'] });
  });

  afterAll(async () => {
    await tg?.stop();
  });

  it('completes every job, loses none and commits no result twice', async () => {
    const jobs = await submitSelftests(tg.client, 200, { tasks: '3', taskMs: '150' });
    const done = waitForAll(tg.client, jobs);

    // Each time, kill the worker that is running a task of a job further down the list
    // (so the kill lands mid-task), and start a fresh worker in its place.
    let kills = 0;
    for (const index of [5, 40, 80, 120, 160]) {
      const job = jobs[index];
      if (!job) continue;
      const { worker } = await firstRunningTask(tg.client, job.id);
      const child = await tg.workerProcess(worker).catch(() => undefined);
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGKILL');
      await exited(child);
      kills += 1;
      await tg.grid.addWorker();
    }

    const finished = await done;
    const result = await audit(tg.grid.redisUrl, finished);
    report('workers killed', { kills, ...result });
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.uncommitted).toBe(0);
    expect(result.tasks).toBe(600);
  });
});
