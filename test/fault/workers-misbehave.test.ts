import { afterEach, describe, expect, it } from 'vitest';
import { audit, firstRunningTask, submitSelftests, waitForAll } from '../helpers/audit.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { eventually, exited, nextConnection } from '../helpers/process.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { FAST_LEASES, report } from './faults.js';

describe('workers that freeze, lose their connection or keep dying', () => {
  let tg: TestGrid | undefined;

  afterEach(async () => {
    await tg?.stop();
    tg = undefined;
  });

  it('a frozen worker (SIGSTOP) loses its task to another; its late result is discarded after SIGCONT', async () => {
    tg = await startTestGrid({ workers: 2, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=1'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '3000' });
    if (!job) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, job.id);
    const frozen = await tg.workerProcess(worker);
    frozen.kill('SIGSTOP');
    const done = await tg.client.waitForJob(job.id);
    const resumed = nextConnection(frozen);
    frozen.kill('SIGCONT');
    await resumed;

    const task = done.tasks.find((t) => t.kind === 'selftest.sleep');
    const frozenIndex = tg.grid.workers.indexOf(frozen) + 1;
    const log = await tg.log(`worker-${frozenIndex}`);
    const result = await audit(tg.grid.redisUrl, [done]);
    report('worker frozen past its lease', { ...result, ranOn: task?.workerName ?? '?' });
    expect(done.state).toBe('completed');
    expect(task?.worker).not.toBe(worker);
    expect(task?.attempts).toBe(2);
    expect(log).toMatch(/discarded/);
    expect(result.duplicates).toBe(0);
    expect(result.uncommitted).toBe(0);
  });

  it('a worker whose connection drops reconnects and keeps no orphaned slots', async () => {
    tg = await startTestGrid({ workers: 0, coordinatorArgs: FAST_LEASES });
    const proxy = await TcpProxy.start(tg.grid.address);
    try {
      const worker = await tg.grid.addWorker(['--coordinator', proxy.address, '--slots', 'selftest.sleep=2']);
      const jobs = await submitSelftests(tg.client, 3, { tasks: '2', taskMs: '1500' });
      await firstRunningTask(tg.client, jobs[0]?.id ?? '');
      const reconnected = nextConnection(worker);
      const cut = proxy.cut();
      await reconnected;
      const finished = await waitForAll(tg.client, jobs);
      const result = await audit(tg.grid.redisUrl, finished);
      const busyNow = async (): Promise<number> => (await tg?.client.listWorkers())?.workers.flatMap((w) => w.slots).reduce((n, s) => n + s.busy, 0) ?? -1;
      await eventually(async () => (await busyNow()) === 0, 'no slot is busy');
      const { workers } = await tg.client.listWorkers();
      const busy = await busyNow();
      report('connection dropped and restored', { ...result, connectionsCut: cut, workersListed: workers.length, busySlots: busy });
      expect(cut).toBeGreaterThan(0);
      expect(result.lost).toBe(0);
      expect(result.duplicates).toBe(0);
      expect(workers).toHaveLength(1);
      expect(busy).toBe(0);
      // The full slot count is still usable: two tasks run side by side again.
      const [again] = await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '800' });
      const view = await tg.client.waitForJob(again?.id ?? '');
      const [a, b] = view.tasks.filter((t) => t.kind === 'selftest.sleep');
      expect(a && b && a.startedAt && b.startedAt && a.finishedAt && b.finishedAt).toBeTruthy();
      const overlap = a && b ? Math.min(Date.parse(a.finishedAt ?? ''), Date.parse(b.finishedAt ?? '')) - Math.max(Date.parse(a.startedAt ?? ''), Date.parse(b.startedAt ?? '')) : 0;
      expect(overlap).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('a task that keeps killing its workers is stopped as poison after the stall limit', async () => {
    tg = await startTestGrid({ workers: 1, coordinatorArgs: [...FAST_LEASES, '--max-stalled-count', '2'] });
    const [job] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '60000' });
    if (!job) throw new Error('no job');
    let kills = 0;
    const watching = (async () => {
      for await (const event of tg.client.watch(job.id)) {
        if (event.type === 'task' && event.state === 'running' && event.worker) {
          // "The task crashes its worker": each time it starts, its worker dies.
          const child = await tg.workerProcess(event.worker);
          child.kill('SIGKILL');
          await exited(child);
          kills += 1;
          await tg.grid.addWorker();
        }
      }
    })();
    const done = await tg.client.waitForJob(job.id);
    await watching;
    const task = done.tasks.find((t) => t.kind === 'selftest.sleep');
    report('poison task', { kills, state: done.state, code: task?.error?.code ?? '-' });
    expect(kills).toBe(3);
    expect(done.state).toBe('failed');
    expect(task?.state).toBe('failed');
    expect(task?.error?.code).toBe('WORKER_LOST');
    expect(task?.error?.message).toMatch(/poison/);
  });
});
