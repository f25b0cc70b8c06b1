/**
 * A large backlog: what a queued task costs in Redis, and whether the coordinator's memory
 * stays flat while the backlog drains.
 *
 * - **Redis bytes per task**: selftest jobs (10,000 no-op tasks each, the most one job takes)
 *   are submitted with no worker connected; Redis's `used_memory` before and after, over the
 *   number of tasks, counts everything the grid keeps per queued task (the BullMQ job of the
 *   task, the grid's task and job records, events). The baseline is the same number of plain
 *   BullMQ jobs, `addBulk` into a plain queue on the same Redis, measured the same way.
 * - **RSS while draining**: two real worker processes (LocalGrid.addWorker, 128 slots each)
 *   then connect and drain the backlog while the coordinator's resident memory is sampled;
 *   flat means its peak stays near what it was when draining started.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { LocalGrid } from '@mmgrid/cli';
import { MmgridClient } from '@mmgrid/client';
import { rssMiB, secondsSince, target, type Benchmark, type BenchContext } from './harness.js';

/** Most tasks one selftest job takes. */
const TASKS_PER_JOB = 10_000;
const WORKERS = 2;
const SLOTS = 128;

export interface BacklogResult {
  readonly tasks: number;
  readonly gridBytesPerTask: number;
  readonly bullBytesPerTask: number;
  readonly submitSeconds: number;
  readonly submitPeakRssMiB: number;
  /** Coordinator RSS when the workers connected, and over the drain. */
  readonly drainStartRssMiB: number;
  readonly drainMinRssMiB: number;
  readonly drainMaxRssMiB: number;
  readonly drainFinalRssMiB: number;
  readonly drained: number;
  readonly drainSeconds: number;
  /** False when the drain was cut off at its time limit. */
  readonly drainedAll: boolean;
}

async function usedMemory(redis: Redis): Promise<number> {
  // Let the append-only file's buffer flush (appendfsync everysec) so it is not counted.
  await delay(1_500);
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

/** Samples a process's RSS until stopped: min, max and last. */
function rssTrack(pid: number): { stop(): Promise<{ min: number; max: number; last: number }> } {
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let last = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const mib = await rssMiB(pid).catch(() => 0);
      if (mib > 0) {
        min = Math.min(min, mib);
        max = Math.max(max, mib);
        last = mib;
      }
      await delay(250);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { min, max, last };
    },
  };
}

/** Plain BullMQ: `count` small jobs added with addBulk; Redis bytes per job. */
async function bullBytesPerJob(connection: { url: string; maxRetriesPerRequest: null }, redis: Redis, count: number): Promise<number> {
  const queue = new Queue('bench-backlog-raw', { connection });
  try {
    await queue.waitUntilReady();
    const before = await usedMemory(redis);
    for (let i = 0; i < count; i += 1_000) {
      await queue.addBulk(Array.from({ length: Math.min(1_000, count - i) }, (_, k) => ({ name: 'selftest.sleep', data: { ms: 0, index: i + k } })));
    }
    const after = await usedMemory(redis);
    return (after - before) / count;
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** selftest.sleep tasks still to run (waiting, delayed or running). */
async function tasksLeft(client: MmgridClient): Promise<number> {
  const { queues } = await client.queueStats();
  return queues.filter((q) => q.kind === 'selftest.sleep').reduce((n, q) => n + q.waiting + q.active + q.delayed, 0);
}

export async function benchBacklog(tasks: number, drainLimitSeconds: number, log: (line: string) => void): Promise<BacklogResult> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bench-backlog-'));
  const grid = await LocalGrid.start({ dataDir, workers: 0, env: { MMGRID_LOG_LEVEL: 'warn' } });
  const client = new MmgridClient({ address: grid.address });
  const redis = new Redis(grid.redisUrl, { maxRetriesPerRequest: null });
  const pid = grid.coordinator.pid ?? 0;
  try {
    const bullBytesPerTask = await bullBytesPerJob({ url: grid.redisUrl, maxRetriesPerRequest: null }, redis, tasks);
    log(`BullMQ: ${bullBytesPerTask.toFixed(0)} B per job`);

    // The backlog, two jobs in flight at a time.
    const before = await usedMemory(redis);
    const submitRss = rssTrack(pid);
    const t0 = performance.now();
    const perJob = Math.min(TASKS_PER_JOB, tasks);
    const sizes: number[] = [];
    for (let left = tasks; left > 0; left -= perJob) sizes.push(Math.min(perJob, left));
    const jobIds: string[] = [];
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < sizes.length) {
          const n = sizes[next++] ?? 0;
          jobIds.push((await client.submit([], { pipeline: 'selftest', params: { tasks: String(n), taskMs: '0' } })).id);
          if (jobIds.length % 10 === 0) log(`submitted ${(jobIds.length * perJob).toLocaleString('en-US')} tasks`);
        }
      }),
    );
    const submitSeconds = secondsSince(t0);
    const submitPeak = (await submitRss.stop()).max;
    const after = await usedMemory(redis);
    const gridBytesPerTask = (after - before) / tasks;
    log(`grid: ${gridBytesPerTask.toFixed(0)} B per task (${submitSeconds.toFixed(0)} s to submit)`);

    // Drain.
    const drainStartRssMiB = await rssMiB(pid);
    const drainRss = rssTrack(pid);
    await Promise.all(Array.from({ length: WORKERS }, () => grid.addWorker(['--slots', `selftest.sleep=${SLOTS}`])));
    // Timed from the workers connected (they may have taken a few tasks already).
    const t1 = performance.now();
    let left = tasks;
    let lastLog = performance.now();
    while (left > 0 && secondsSince(t1) < drainLimitSeconds) {
      await delay(1_000);
      left = await tasksLeft(client);
      if (performance.now() - lastLog > 15_000) {
        lastLog = performance.now();
        log(`draining: ${left.toLocaleString('en-US')} tasks left`);
      }
    }
    const drainSeconds = secondsSince(t1);
    if (left === 0) {
      // Every task ran: the jobs assemble and complete.
      for (const id of jobIds) {
        const done = await client.waitForJob(id);
        if (done.state !== 'completed') throw new Error(`a backlog job ended ${done.state}: ${done.error?.message ?? ''}`);
      }
    }
    const drain = await drainRss.stop();
    log(`drained ${(tasks - left).toLocaleString('en-US')} tasks in ${drainSeconds.toFixed(0)} s; RSS ${drainStartRssMiB.toFixed(0)} → max ${drain.max.toFixed(0)} MiB`);
    return {
      tasks,
      gridBytesPerTask,
      bullBytesPerTask,
      submitSeconds,
      submitPeakRssMiB: submitPeak,
      drainStartRssMiB,
      drainMinRssMiB: drain.min,
      drainMaxRssMiB: drain.max,
      drainFinalRssMiB: drain.last,
      drained: tasks - left,
      drainSeconds,
      drainedAll: left === 0,
    };
  } finally {
    redis.disconnect();
    client.close();
    await grid.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export const backlog: Benchmark = {
  name: 'backlog',
  title: 'Backlog: Redis memory per queued task, coordinator memory while it drains',
  async run(ctx: BenchContext) {
    const tasks = ctx.scale === 'smoke' ? 2_000 : ctx.scale === 'full' ? 1_000_000 : 100_000;
    // The full size's drain is cut off: a million tasks take far longer than a benchmark should.
    const drainLimitSeconds = ctx.scale === 'full' ? 180 : 600;
    const r = await benchBacklog(tasks, drainLimitSeconds, (line) => ctx.log(line));
    const flat = r.drainMaxRssMiB / r.drainStartRssMiB;
    return {
      method: `${r.tasks.toLocaleString('en-US')} no-op selftest tasks (jobs of ${Math.min(TASKS_PER_JOB, r.tasks).toLocaleString('en-US')}) submitted with no worker connected: Redis used_memory growth ÷ tasks; then ${WORKERS} worker processes × ${SLOTS} slots drain them while the coordinator's RSS is sampled every 250 ms`,
      baseline: 'the same number of plain BullMQ jobs ({ ms, index } data) added with addBulk to a plain queue on the same Redis, measured the same way; for RSS, the coordinator when draining started',
      table: {
        columns: ['', 'tasks', 'B/task', '×BullMQ', 'RSS start MiB', 'RSS min MiB', 'RSS max MiB', 'RSS final MiB', 'max ÷ start', 'tasks/s'],
        rows: [
          ['grid', r.tasks, Math.round(r.gridBytesPerTask), `×${(r.gridBytesPerTask / r.bullBytesPerTask).toFixed(2)}`, Math.round(r.drainStartRssMiB), Math.round(r.drainMinRssMiB), Math.round(r.drainMaxRssMiB), Math.round(r.drainFinalRssMiB), `×${flat.toFixed(2)}`, Math.round(r.drained / r.drainSeconds)],
          ['BullMQ', r.tasks, Math.round(r.bullBytesPerTask), '×1.00', '', '', '', '', '', ''],
        ],
      },
      targets: [
        target('Redis memory per queued task', r.gridBytesPerTask, '<=', 1_500, ' B'),
        target('coordinator peak RSS while draining ÷ RSS when draining started', flat, '<=', 1.25, '×'),
      ],
      figures: {
        tasks: r.tasks,
        grid_bytes_per_task: r.gridBytesPerTask,
        bullmq_bytes_per_job: r.bullBytesPerTask,
        grid_over_bullmq: r.gridBytesPerTask / r.bullBytesPerTask,
        submit_s: r.submitSeconds,
        submit_peak_rss_MiB: r.submitPeakRssMiB,
        drain_start_rss_MiB: r.drainStartRssMiB,
        drain_min_rss_MiB: r.drainMinRssMiB,
        drain_max_rss_MiB: r.drainMaxRssMiB,
        drain_final_rss_MiB: r.drainFinalRssMiB,
        drained_tasks: r.drained,
        drain_s: r.drainSeconds,
        drained_all: r.drainedAll,
        drain_tasks_per_s: r.drained / r.drainSeconds,
      },
      notes: [
        'Redis bytes per task is used_memory growth (allocator-reported, so it includes hash-table and stream overhead, the AOF buffer excepted) over the tasks queued',
        ...(r.drainedAll ? [] : [`the drain was cut off after ${drainLimitSeconds} s: ${r.drained.toLocaleString('en-US')} of ${r.tasks.toLocaleString('en-US')} tasks ran; RSS figures cover that part`]),
      ],
    };
  },
};
