/**
 * The grid's cost per task against BullMQ's, which it is built on, on the same Redis:
 *
 * - **throughput**: no-op tasks per second end to end. The grid: selftest jobs whose tasks
 *   sleep 0 ms, submitted over gRPC to a coordinator process, dispatched over gRPC to worker
 *   processes with enough slots to never be the limit, committed, and each job assembled.
 *   The baseline: a plain BullMQ producer (`addBulk`) and `Worker` (no-op processor, the
 *   same concurrency as the grid's slots) in one process.
 * - **latency**: one job of one no-op task at a time, submit to result, against BullMQ's
 *   `add` to `waitUntilFinished` (QueueEvents, Redis streams) of one no-op job at a time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { LocalGrid } from '@mmgrid/cli';
import { MmgridClient } from '@mmgrid/client';
import { cpuMsOf, ownCpuMs, quantile, secondsSince, target, type Benchmark, type BenchContext } from './harness.js';

/** Slots per worker process and worker processes: 2 × 64, far more than a 2-core machine can fill. */
const SLOTS = 64;
const WORKERS = 2;

interface Rig {
  readonly grid: LocalGrid;
  readonly client: MmgridClient;
  readonly connection: { url: string; maxRetriesPerRequest: null };
  close(): Promise<void>;
}

async function startRig(): Promise<Rig> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bench-dispatch-'));
  const grid = await LocalGrid.start({
    dataDir,
    workers: WORKERS,
    workerArgs: ['--slots', `selftest.sleep=${SLOTS}`],
    env: { MMGRID_LOG_LEVEL: 'warn' },
  });
  const client = new MmgridClient({ address: grid.address });
  return {
    grid,
    client,
    connection: { url: grid.redisUrl, maxRetriesPerRequest: null },
    async close() {
      client.close();
      await grid.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** CPU (ms) of the grid's processes: coordinator and workers. */
async function gridCpuMs(grid: LocalGrid): Promise<number> {
  const pids = [...grid.coordinators, ...grid.workers].map((p) => p.pid ?? 0).filter((p) => p > 0);
  const each = await Promise.all(pids.map((p) => cpuMsOf(p)));
  return each.reduce((a, b) => a + b, 0);
}

/** Runs `jobs` selftest jobs of `tasksPerJob` no-op tasks at once; resolves with tasks per second. */
async function gridThroughput(rig: Rig, jobs: number, tasksPerJob: number): Promise<{ perSecond: number; cpuMsPerTask: number }> {
  const cpuBefore = await gridCpuMs(rig.grid);
  const started = performance.now();
  const submitted = await Promise.all(
    Array.from({ length: jobs }, () => rig.client.submit([], { pipeline: 'selftest', params: { tasks: String(tasksPerJob), taskMs: '0' } })),
  );
  const done = await Promise.all(submitted.map((j) => rig.client.waitForJob(j.id)));
  const seconds = secondsSince(started);
  for (const d of done) if (d.state !== 'completed') throw new Error(`a throughput job ended ${d.state}: ${d.error?.message ?? ''}`);
  const tasks = jobs * tasksPerJob;
  return { perSecond: tasks / seconds, cpuMsPerTask: ((await gridCpuMs(rig.grid)) - cpuBefore) / tasks };
}

/** The same number of no-op jobs through a plain BullMQ queue and worker. */
async function bullThroughput(rig: Rig, count: number, name: string): Promise<{ perSecond: number; cpuMsPerTask: number }> {
  const queue = new Queue(name, { connection: rig.connection });
  let completed = 0;
  let finish: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker(name, () => Promise.resolve({}), { connection: rig.connection, concurrency: SLOTS * WORKERS, autorun: false });
  worker.on('completed', () => {
    completed += 1;
    if (completed === count) finish();
  });
  try {
    const cpuBefore = ownCpuMs();
    const started = performance.now();
    void worker.run();
    for (let i = 0; i < count; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: { removeOnComplete: true } })));
    }
    await allDone;
    const seconds = secondsSince(started);
    return { perSecond: count / seconds, cpuMsPerTask: (ownCpuMs() - cpuBefore) / count };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

export const throughput: Benchmark = {
  name: 'throughput',
  title: 'Throughput: no-op tasks per second, end to end',
  async run(ctx: BenchContext) {
    const jobs = ctx.scale === 'smoke' ? 2 : 20;
    const tasksPerJob = ctx.scale === 'smoke' ? 100 : ctx.scale === 'full' ? 5_000 : 1_000;
    const rounds = ctx.scale === 'smoke' ? 1 : 3;
    const rig = await startRig();
    try {
      // Warm-up: code compiled, connections open, pools filled on both sides.
      await gridThroughput(rig, 2, 100);
      await bullThroughput(rig, 1_000, 'bench-warm');
      const grid: { perSecond: number; cpuMsPerTask: number }[] = [];
      const bull: { perSecond: number; cpuMsPerTask: number }[] = [];
      for (let r = 0; r < rounds; r++) {
        // Alternate which goes first, so drift in the machine's speed falls on both alike.
        const g = async (): Promise<void> => void grid.push(await gridThroughput(rig, jobs, tasksPerJob));
        const b = async (): Promise<void> => void bull.push(await bullThroughput(rig, jobs * tasksPerJob, `bench-raw-${r}`));
        if (r % 2 === 0) {
          await g();
          await b();
        } else {
          await b();
          await g();
        }
        ctx.log(`round ${r + 1}: grid ${grid.at(-1)?.perSecond.toFixed(0)}/s, BullMQ ${bull.at(-1)?.perSecond.toFixed(0)}/s`);
      }
      const best = (xs: { perSecond: number }[]): number => Math.max(...xs.map((x) => x.perSecond));
      const gridBest = best(grid);
      const bullBest = best(bull);
      const cpu = (xs: { cpuMsPerTask: number }[]): number => Math.min(...xs.map((x) => x.cpuMsPerTask));
      return {
        method: `${jobs} selftest jobs × ${tasksPerJob.toLocaleString('en-US')} no-op tasks at once, submitted over gRPC, dispatched to ${WORKERS} worker processes × ${SLOTS} slots, committed and assembled; best of ${rounds}`,
        baseline: `plain BullMQ: addBulk of the same number of no-op jobs and one Worker with concurrency ${SLOTS * WORKERS}, same Redis`,
        table: {
          columns: ['', 'tasks/s', '×BullMQ', 'CPU ms/task'],
          rows: [
            ['grid', Math.round(gridBest), `×${(gridBest / bullBest).toFixed(2)}`, cpu(grid)],
            ['BullMQ', Math.round(bullBest), '×1.00', cpu(bull)],
          ],
        },
        targets: [target('grid ÷ raw BullMQ throughput', gridBest / bullBest, '>=', 0.8, '×')],
        figures: { grid_tasks_per_s: gridBest, bullmq_tasks_per_s: bullBest, grid_cpu_ms_per_task: cpu(grid), bullmq_cpu_ms_per_task: cpu(bull), tasks_per_round: jobs * tasksPerJob, rounds },
        notes: [
          'grid CPU per task counts the coordinator and worker processes; BullMQ CPU per task counts its one process (both leave out Redis)',
        ],
      };
    } finally {
      await rig.close();
    }
  },
};

export const latency: Benchmark = {
  name: 'latency',
  title: 'Latency: a one-task job, submit to result',
  async run(ctx: BenchContext) {
    const n = ctx.scale === 'smoke' ? 10 : ctx.scale === 'full' ? 2_000 : 500;
    const rig = await startRig();
    const queue = new Queue('bench-latency', { connection: rig.connection });
    const events = new QueueEvents('bench-latency', { connection: rig.connection });
    const worker = new Worker('bench-latency', () => Promise.resolve({}), { connection: rig.connection, concurrency: SLOTS });
    try {
      await events.waitUntilReady();
      await worker.waitUntilReady();
      const gridMs: number[] = [];
      const bullMs: number[] = [];
      const oneGrid = async (): Promise<number> => {
        const t = performance.now();
        const job = await rig.client.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '0' } });
        const done = await rig.client.waitForJob(job.id);
        if (done.state !== 'completed') throw new Error(`a latency job ended ${done.state}`);
        return performance.now() - t;
      };
      const oneBull = async (): Promise<number> => {
        const t = performance.now();
        const job = await queue.add('noop', {}, { removeOnComplete: true });
        await job.waitUntilFinished(events);
        return performance.now() - t;
      };
      // Warm-up.
      for (let i = 0; i < Math.min(50, n); i++) {
        await oneGrid();
        await oneBull();
      }
      // Interleaved, one at a time, so both see the same machine.
      for (let i = 0; i < n; i++) {
        gridMs.push(await oneGrid());
        bullMs.push(await oneBull());
      }
      const p = (xs: number[], q: number): number => quantile(xs, q);
      const [g50, g99, b50, b99] = [p(gridMs, 0.5), p(gridMs, 0.99), p(bullMs, 0.5), p(bullMs, 0.99)];
      ctx.log(`grid p50 ${g50.toFixed(1)} ms, BullMQ p50 ${b50.toFixed(1)} ms`);
      return {
        method: `${n} one-task selftest jobs one after another: submit over gRPC, dispatch to a worker process, commit, assemble, result seen by the client's watch`,
        baseline: 'plain BullMQ, same Redis: add one no-op job, wait for it with waitUntilFinished (QueueEvents), interleaved with the grid’s jobs',
        table: {
          columns: ['', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
          rows: [
            ['grid', g50, p(gridMs, 0.9), g99, Math.max(...gridMs)],
            ['BullMQ', b50, p(bullMs, 0.9), b99, Math.max(...bullMs)],
            ['grid − BullMQ', g50 - b50, p(gridMs, 0.9) - p(bullMs, 0.9), g99 - b99, Math.max(...gridMs) - Math.max(...bullMs)],
          ],
        },
        targets: [target('p50 above BullMQ', g50 - b50, '<=', 3, ' ms'), target('p99 above BullMQ', g99 - b99, '<=', 15, ' ms')],
        figures: { samples: n, grid_p50_ms: g50, grid_p99_ms: g99, bullmq_p50_ms: b50, bullmq_p99_ms: b99 },
      };
    } finally {
      await worker.close();
      await events.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await rig.close();
    }
  },
};
