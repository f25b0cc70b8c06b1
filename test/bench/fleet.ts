/**
 * The coordinator's cost per connected worker. A fleet of N simulated workers (fleet-sim.ts:
 * each a real Connect stream on its own TCP connection, with a hello, heartbeats at the
 * welcome's interval and `selftest.sleep` results, 1,000 of them per simulator process)
 * connects to one coordinator process; its resident memory and CPU are measured at idle (all
 * connected, over two heartbeat rounds) and while a batch of selftest jobs (tasks of 0 to
 * 50 ms, three per worker) runs across the fleet.
 *
 * "Heartbeats keeping up" is judged from the coordinator's side: no worker dropped (the
 * coordinator ends the stream of a worker silent for three intervals), every worker in its
 * fleet view (AdminService.ListWorkers), and the lag from a simulator sending a heartbeat to
 * the coordinator recording it (the view's lastHeartbeatMs; one machine, one clock).
 *
 * The baseline is the same coordinator process before any worker connects; the figure is
 * the growth over it, per worker. Each size gets a fresh grid (Redis and coordinator), so
 * one size's garbage does not land on the next.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LocalGrid } from '@mmgrid/cli';
import { MmgridClient } from '@mmgrid/client';
import type { SimProbe, SimReport, SimRequest, SimStats } from './fleet-sim.js';
import { cpuMsOf, quantile, rssMiB, secondsSince, target, type Benchmark, type BenchContext } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Simulated workers per simulator process. */
const PER_PROCESS = 1_000;
/** The size the target is stated for. */
const TARGET_WORKERS = 10_000;
const TARGET_RSS_MIB = 1_024;
/** Tasks per worker in the dispatch batch, and the task lengths it cycles through. */
const TASKS_PER_WORKER = 3;
const TASK_MS = [0, 10, 25, 50] as const;

export interface FleetResult {
  readonly workers: number;
  readonly connectSeconds: number;
  /** The coordinator before any worker connected. */
  readonly baseRssMiB: number;
  readonly baseCpuPercent: number;
  /** All workers connected, no tasks (median RSS over the window). */
  readonly idleRssMiB: number;
  readonly idleCpuPercent: number;
  /** While the dispatch batch ran. */
  readonly dispatchPeakRssMiB: number;
  readonly dispatchCpuPercent: number;
  readonly dispatchTasks: number;
  readonly dispatchTasksPerSecond: number;
  /** Heartbeat lag (send → recorded by the coordinator) at the end of the idle window and of the dispatch. */
  readonly idleLagP99Ms: number;
  readonly dispatchLagP99Ms: number;
  readonly lagMaxMs: number;
  /** Workers missing from the coordinator's fleet view at either probe. */
  readonly missingFromView: number;
  readonly dropped: number;
  readonly dropReasons: Readonly<Record<string, number>>;
  readonly ackP99Ms: number;
  readonly simTimerLagP99Ms: number;
  readonly heartbeatIntervalMs: number;
}

class Simulator {
  private readonly waiting: ((r: SimReport) => void)[] = [];

  private constructor(
    readonly child: ChildProcess,
    readonly prefix: string,
  ) {
    child.on('message', (r: SimReport) => this.waiting.shift()?.(r));
  }

  static async start(address: string, workers: number, prefix: string): Promise<{ sim: Simulator; connected: number }> {
    const child = fork(path.join(here, 'fleet-sim.ts'), ['--coordinator', address, '--workers', String(workers), '--prefix', prefix], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const sim = new Simulator(child, prefix);
    const ready = await Promise.race([
      sim.next(),
      once(child, 'exit').then(([code]) => {
        throw new Error(`the fleet simulator ${prefix} exited (code ${String(code)}) before its workers connected`);
      }),
    ]);
    if (ready.type !== 'ready') throw new Error(`the fleet simulator ${prefix} said ${ready.type} first`);
    return { sim, connected: ready.connected };
  }

  private next(): Promise<SimReport> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async ask<T extends SimReport['type']>(request: SimRequest, type: T): Promise<Extract<SimReport, { type: T }>> {
    const answer = this.next();
    this.child.send(request);
    const r = await answer;
    if (r.type !== type) throw new Error(`the fleet simulator ${this.prefix} answered ${r.type} to ${request.type}`);
    return r as Extract<SimReport, { type: T }>;
  }

  stats(): Promise<SimStats> {
    return this.ask({ type: 'stats' }, 'stats');
  }

  probe(lastHeartbeatMs: Record<string, number>, at: number): Promise<SimProbe> {
    return this.ask({ type: 'probe', lastHeartbeatMs, at }, 'probe');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send({ type: 'stop' } satisfies SimRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** CPU % of one core and median RSS of `pid` over `seconds`. */
async function window(pid: number, seconds: number): Promise<{ cpuPercent: number; rssMiB: number }> {
  const rss: number[] = [];
  const cpu0 = await cpuMsOf(pid);
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    rss.push(await rssMiB(pid));
    await delay(250);
  }
  const cpuPercent = (((await cpuMsOf(pid)) - cpu0) / (performance.now() - t0)) * 100;
  return { cpuPercent, rssMiB: quantile(rss, 0.5) };
}

/** Heartbeat lags of every simulated worker, from the coordinator's fleet view. */
async function probe(client: MmgridClient, sims: readonly Simulator[]): Promise<{ lagMs: number[]; missing: number }> {
  const at = Date.now();
  const { workers } = await client.listWorkers();
  const lagMs: number[] = [];
  let missing = 0;
  for (const sim of sims) {
    const mine: Record<string, number> = {};
    for (const w of workers) if (w.workerId.startsWith(`${sim.prefix}-`)) mine[w.workerId] = w.lastHeartbeatMs;
    const p = await sim.probe(mine, at);
    lagMs.push(...p.lagMs);
    missing += p.missing;
  }
  return { lagMs, missing };
}

export interface FleetOptions {
  readonly workers: number;
  /** Length of the idle window (the baseline's is at most 5 s). */
  readonly idleSeconds: number;
  /** Length of the dispatch window. */
  readonly dispatchSeconds: number;
  /** Extra environment for the coordinator (for example NODE_OPTIONS=--cpu-prof). */
  readonly coordinatorEnv?: Readonly<Record<string, string>>;
}

export async function benchFleet(options: FleetOptions, log: (line: string) => void): Promise<FleetResult> {
  const { workers, idleSeconds, dispatchSeconds } = options;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bench-fleet-'));
  const grid = await LocalGrid.start({ dataDir, workers: 0, env: { MMGRID_LOG_LEVEL: 'warn', ...options.coordinatorEnv } });
  const client = new MmgridClient({ address: grid.address, maxMessageBytes: 64 * 1024 * 1024 });
  const pid = grid.coordinator.pid ?? 0;
  const sims: Simulator[] = [];
  try {
    const base = await window(pid, Math.min(5, idleSeconds));

    const started = performance.now();
    const processes = Math.ceil(workers / PER_PROCESS);
    const launched = await Promise.all(
      Array.from({ length: processes }, (_, p) => Simulator.start(grid.address, Math.min(PER_PROCESS, workers - p * PER_PROCESS), `sim${p}`)),
    );
    sims.push(...launched.map((l) => l.sim));
    const connected = launched.reduce((n, l) => n + l.connected, 0);
    const connectSeconds = secondsSince(started);
    if (connected < workers) throw new Error(`only ${connected} of ${workers} simulated workers connected`);
    log(`${workers} workers: connected in ${connectSeconds.toFixed(1)} s`);
    // Let the connection burst settle (its garbage collected, first heartbeats sent).
    await delay(3_000);
    await Promise.all(sims.map((s) => s.stats()));

    const idle = await window(pid, idleSeconds);
    const idleProbe = await probe(client, sims);
    const idleStats = await Promise.all(sims.map((s) => s.stats()));
    log(`${workers} workers: idle ${idle.rssMiB.toFixed(0)} MiB, ${idle.cpuPercent.toFixed(1)} % CPU`);

    // The dispatch batch: jobs of up to 10,000 tasks, each job one task length. More tasks
    // than the window runs, so the coordinator dispatches through all of it; what is left
    // is cancelled.
    const tasks = workers * TASKS_PER_WORKER;
    const perJob = Math.min(10_000, Math.ceil(tasks / TASK_MS.length));
    const jobSizes: number[] = [];
    for (let left = tasks; left > 0; left -= perJob) jobSizes.push(Math.min(perJob, left));
    const sampler = { peak: 0, stop: false };
    const sampling = (async () => {
      while (!sampler.stop) {
        sampler.peak = Math.max(sampler.peak, await rssMiB(pid));
        await delay(100);
      }
    })();
    const cpu0 = await cpuMsOf(pid);
    const t0 = performance.now();
    const jobs = await Promise.all(
      jobSizes.map((n, i) => client.submit([], { pipeline: 'selftest', params: { tasks: String(n), taskMs: String(TASK_MS[i % TASK_MS.length]) } })),
    );
    // Stats reset what they report (acks, timer lags) on every call: keep every answer.
    const polled: SimStats[] = [...idleStats];
    let ran = 0;
    while (secondsSince(t0) < dispatchSeconds && ran < tasks) {
      await delay(1_000);
      const now = await Promise.all(sims.map((s) => s.stats()));
      polled.push(...now);
      ran = now.reduce((n, s) => n + s.tasksDone, 0);
    }
    const dispatchProbe = await probe(client, sims);
    const elapsed = secondsSince(t0);
    const dispatchCpuPercent = (((await cpuMsOf(pid)) - cpu0) / (elapsed * 1000)) * 100;
    sampler.stop = true;
    await sampling;
    const stats = await Promise.all(sims.map((s) => s.stats()));
    polled.push(...stats);
    ran = stats.reduce((n, s) => n + s.tasksDone, 0);
    await Promise.all(jobs.map((j) => client.cancel(j.id, 'the benchmark window ended').catch(() => undefined)));
    log(`${workers} workers: ${ran} of ${tasks} tasks in ${elapsed.toFixed(1)} s, peak ${sampler.peak.toFixed(0)} MiB, ${dispatchCpuPercent.toFixed(0)} % CPU`);

    const dropReasons: Record<string, number> = {};
    for (const s of stats) for (const [reason, n] of Object.entries(s.dropReasons)) dropReasons[reason] = (dropReasons[reason] ?? 0) + n;
    const acks = polled.flatMap((s) => s.ackMs);
    return {
      workers,
      connectSeconds,
      baseRssMiB: base.rssMiB,
      baseCpuPercent: base.cpuPercent,
      idleRssMiB: idle.rssMiB,
      idleCpuPercent: idle.cpuPercent,
      dispatchPeakRssMiB: sampler.peak,
      dispatchCpuPercent,
      dispatchTasks: ran,
      dispatchTasksPerSecond: ran / elapsed,
      idleLagP99Ms: quantile(idleProbe.lagMs, 0.99),
      dispatchLagP99Ms: quantile(dispatchProbe.lagMs, 0.99),
      lagMaxMs: Math.max(0, ...idleProbe.lagMs, ...dispatchProbe.lagMs),
      missingFromView: Math.max(idleProbe.missing, dispatchProbe.missing),
      dropped: stats.reduce((n, s) => n + s.dropped, 0),
      dropReasons,
      ackP99Ms: acks.length > 0 ? quantile(acks, 0.99) : 0,
      simTimerLagP99Ms: Math.max(0, ...polled.map((s) => s.timerLagP99Ms)),
      heartbeatIntervalMs: stats[0]?.heartbeatIntervalMs ?? 0,
    };
  } finally {
    await Promise.all(sims.map((s) => s.stop()));
    client.close();
    await grid.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const kib = (mib: number): number => mib * 1024;

export const fleet: Benchmark = {
  name: 'fleet',
  title: 'Fleet: coordinator memory and CPU against connected workers',
  async run(ctx: BenchContext) {
    const sizes = ctx.scale === 'smoke' ? [100] : ctx.scale === 'full' ? [1_000, 5_000, 10_000] : [1_000, 5_000];
    const idleSeconds = ctx.scale === 'smoke' ? 3 : 10;
    const dispatchSeconds = ctx.scale === 'smoke' ? 5 : 20;
    const results: FleetResult[] = [];
    for (const n of sizes) results.push(await benchFleet({ workers: n, idleSeconds, dispatchSeconds }, (line) => ctx.log(line)));
    const largest = results.at(-1);
    if (!largest) throw new Error('no fleet size ran');
    const perWorkerKiB = (r: FleetResult): number => kib(r.idleRssMiB - r.baseRssMiB) / r.workers;
    const dispatchPerWorkerKiB = (r: FleetResult): number => kib(r.dispatchPeakRssMiB - r.baseRssMiB) / r.workers;
    // At the target's size the figure is measured; below it, the largest size's peak plus the
    // idle cost of the workers still missing.
    const measured = largest.workers >= TARGET_WORKERS;
    const rssAtTarget = measured ? largest.dispatchPeakRssMiB : largest.dispatchPeakRssMiB + ((TARGET_WORKERS - largest.workers) * perWorkerKiB(largest)) / 1024;
    const dropped = results.reduce((n, r) => n + r.dropped, 0);
    const missing = results.reduce((n, r) => n + r.missingFromView, 0);
    const lagP99 = Math.max(...results.map((r) => Math.max(r.idleLagP99Ms, r.dispatchLagP99Ms)));
    const interval = largest.heartbeatIntervalMs;
    const reasons = Object.entries(Object.assign({}, ...results.map((r) => r.dropReasons)) as Record<string, number>);
    return {
      method:
        `N simulated workers (fleet-sim.ts, ${PER_PROCESS.toLocaleString('en-US')} per process, each its own Connect stream and TCP connection, one selftest.sleep slot, heartbeats every ${interval} ms as welcomed) on one coordinator; ` +
        `RSS (median) and CPU at idle over ${idleSeconds} s, then peak RSS and CPU over ${dispatchSeconds} s while a batch of ${TASKS_PER_WORKER} tasks per worker (0–50 ms) is dispatched (the rest is then cancelled); heartbeat lag = simulator send → coordinator's lastHeartbeatMs (ListWorkers)`,
      baseline: 'the same coordinator process before any worker connected (fresh grid per size); per-worker cost = growth over it ÷ N',
      table: {
        columns: ['workers', 'connect s', 'idle MiB', 'KiB/worker', 'idle CPU %', 'dispatch peak MiB', 'dispatch CPU %', 'tasks/s', 'hb lag p99 ms', 'ack p99 ms', 'dropped'],
        rows: [
          ['0 (baseline)', 0, Math.round(results[0]?.baseRssMiB ?? 0), '', results[0]?.baseCpuPercent ?? 0, '', '', '', '', '', ''],
          ...results.map((r) => [
            r.workers,
            r.connectSeconds,
            Math.round(r.idleRssMiB),
            Math.round(perWorkerKiB(r)),
            r.idleCpuPercent,
            Math.round(r.dispatchPeakRssMiB),
            r.dispatchCpuPercent,
            Math.round(r.dispatchTasksPerSecond),
            Math.round(Math.max(r.idleLagP99Ms, r.dispatchLagP99Ms)),
            Math.round(r.ackP99Ms),
            r.dropped,
          ]),
        ],
      },
      targets: [
        target(`coordinator RSS at ${TARGET_WORKERS.toLocaleString('en-US')} workers while dispatching${measured ? '' : ` (projected from ${largest.workers.toLocaleString('en-US')})`}`, rssAtTarget, '<=', TARGET_RSS_MIB, ' MiB'),
        target('workers dropped by the coordinator (all sizes)', dropped, '<=', 0),
        target('workers missing from the coordinator’s fleet view', missing, '<=', 0),
        target('heartbeat lag p99 (send → recorded), idle and dispatching', lagP99, '<=', interval / 5, ' ms'),
      ],
      figures: Object.fromEntries<number | boolean>([
        ['heartbeat_interval_ms', interval],
        ['rss_at_10000_workers_MiB', rssAtTarget],
        ['rss_at_10000_workers_measured', measured],
        ...results.flatMap((r): [string, number][] => {
          const n = r.workers;
          return [
            [`connect_s_${n}`, r.connectSeconds],
            [`base_rss_MiB_${n}`, r.baseRssMiB],
            [`base_cpu_percent_${n}`, r.baseCpuPercent],
            [`idle_rss_MiB_${n}`, r.idleRssMiB],
            [`idle_cpu_percent_${n}`, r.idleCpuPercent],
            [`idle_KiB_per_worker_${n}`, perWorkerKiB(r)],
            [`dispatch_peak_rss_MiB_${n}`, r.dispatchPeakRssMiB],
            [`dispatch_KiB_per_worker_${n}`, dispatchPerWorkerKiB(r)],
            [`dispatch_cpu_percent_${n}`, r.dispatchCpuPercent],
            [`dispatch_tasks_${n}`, r.dispatchTasks],
            [`dispatch_tasks_per_s_${n}`, r.dispatchTasksPerSecond],
            [`heartbeat_lag_p99_idle_ms_${n}`, r.idleLagP99Ms],
            [`heartbeat_lag_p99_dispatch_ms_${n}`, r.dispatchLagP99Ms],
            [`heartbeat_lag_max_ms_${n}`, r.lagMaxMs],
            [`missing_from_view_${n}`, r.missingFromView],
            [`dropped_${n}`, r.dropped],
            [`ack_p99_ms_${n}`, r.ackP99Ms],
            [`sim_timer_lag_p99_ms_${n}`, r.simTimerLagP99Ms],
          ];
        }),
      ]),
      notes: [
        'CPU % is of one core; on a 2-core machine the simulators, Redis and the coordinator share the cores, so dispatch CPU and tasks/s are bounded by the machine, not by the fleet',
        `sim timer lag p99 (the simulators' own event loops) ${Math.max(...results.map((r) => r.simTimerLagP99Ms)).toFixed(0)} ms: a heartbeat lag near it is the simulators' lateness, not the coordinator's`,
        'every simulated worker has its own channel (grpc.use_local_subchannel_pool), so the coordinator holds one TCP connection and HTTP/2 session per worker, as with real workers; its open files (ulimit -n) must exceed the fleet size',
        ...(measured ? [] : [`the ${TARGET_WORKERS.toLocaleString('en-US')}-worker RSS is projected: the largest size's dispatch peak plus its idle KiB per worker for the rest; pnpm bench --full fleet measures it`]),
        ...(reasons.length > 0 ? [`drops: ${reasons.map(([r, n]) => `${n} × ${r}`).join('; ')}`] : []),
      ],
    };
  },
};
