import { afterEach, describe, expect, it } from 'vitest';
import { MmgridClient } from '@mmgrid/client';
import { audit, firstRunningTask, submitSelftests, waitForAll } from '../helpers/audit.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { exited } from '../helpers/process.js';
import { FAST_LEASES, report } from './faults.js';

describe('coordinators dying under load', () => {
  let tg: TestGrid | undefined;

  afterEach(async () => {
    await tg?.stop();
    tg = undefined;
  });

  it('kill -9 the coordinator and start it again: every job accepted before the kill completes', async () => {
    tg = await startTestGrid({ workers: 3, coordinatorArgs: FAST_LEASES });
    const grid = tg.grid;
    const jobs = await submitSelftests(tg.client, 200, { tasks: '2', taskMs: '100' });
    await firstRunningTask(tg.client, jobs[0]?.id ?? '');
    grid.coordinator.kill('SIGKILL');
    await exited(grid.coordinator);
    await grid.restartCoordinator();
    const finished = await waitForAll(tg.client, jobs);
    const result = await audit(grid.redisUrl, finished);
    report('coordinator killed and restarted', result);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.uncommitted).toBe(0);
  });

  it('two replicas, kill -9 one: every job completes through the other', async () => {
    tg = await startTestGrid({ workers: 4, replicas: 2, coordinatorArgs: FAST_LEASES });
    const grid = tg.grid;
    const [first, second] = grid.addresses;
    if (!first || !second) throw new Error('two replicas expected');
    const viaFirst = tg.client;
    const viaSecond = new MmgridClient({ address: second });
    try {
      // Workers spread over both replicas; jobs go in through both.
      const workers = (await viaSecond.listWorkers()).workers;
      expect(new Set(workers.map((w) => w.coordinatorId)).size).toBe(2);
      const jobs = [
        ...(await submitSelftests(viaFirst, 100, { tasks: '2', taskMs: '100' })),
        ...(await submitSelftests(viaSecond, 100, { tasks: '2', taskMs: '100' })),
      ];
      // A job submitted on one replica is watched on the other (events live in Redis).
      await firstRunningTask(viaSecond, jobs[0]?.id ?? '');
      grid.coordinator.kill('SIGKILL');
      await exited(grid.coordinator);
      const finished = await waitForAll(viaSecond, jobs);
      const result = await audit(grid.redisUrl, finished);
      const after = (await viaSecond.listWorkers()).workers;
      report('one of two replicas killed', { ...result, workersOnSurvivor: after.length });
      expect(result.lost).toBe(0);
      expect(result.duplicates).toBe(0);
      expect(result.uncommitted).toBe(0);
      // Every worker moved to the surviving replica.
      expect(after.map((w) => w.coordinatorId)).toEqual(after.map(() => 'coordinator-2'));
      expect(after).toHaveLength(4);
    } finally {
      viaSecond.close();
    }
  });

  it('restart Redis mid-load: coordinator and workers reconnect and nothing is lost', async () => {
    tg = await startTestGrid({ workers: 3, coordinatorArgs: FAST_LEASES });
    const jobs = await submitSelftests(tg.client, 150, { tasks: '2', taskMs: '100' });
    await firstRunningTask(tg.client, jobs[0]?.id ?? '');
    await tg.grid.restartRedis();
    const finished = await waitForAll(tg.client, jobs);
    const result = await audit(tg.grid.redisUrl, finished);
    report('redis restarted', result);
    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.uncommitted).toBe(0);
  });
});
