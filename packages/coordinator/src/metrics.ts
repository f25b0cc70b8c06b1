import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { COORDINATOR_METRICS, type MetricSpec } from '@mmgrid/core';
import type { GpuStats } from '@mmgrid/proto';

type Catalog = typeof COORDINATOR_METRICS;
type LabelsOf<S extends MetricSpec> = S['labels'][number];
type InstrumentOf<S extends MetricSpec> = S['type'] extends 'counter'
  ? Counter<LabelsOf<S>>
  : S['type'] extends 'gauge'
    ? Gauge<LabelsOf<S>>
    : Histogram<LabelsOf<S>>;

/** One prom-client instrument per entry of COORDINATOR_METRICS, typed by its labels. */
export type CoordinatorInstruments = { readonly [K in keyof Catalog]: InstrumentOf<Catalog[K]> };

export type JobOutcome = 'completed' | 'partial' | 'failed' | 'cancelled';
export type TaskOutcome = 'succeeded' | 'failed' | 'retried' | 'cancelled';
export type BlobDirection = 'in' | 'out';

/** Queue states the depth gauge reports (BullMQ's "prioritized" counts as waiting). */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'waiting_children', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** The tasks in one BullMQ queue, by state; queues of the same kind are summed. */
export interface QueueDepth {
  readonly kind: string;
  readonly counts: Readonly<Partial<Record<QueueState, number>>>;
}

/** What the worker gauges read of a connected worker (a WorkerSession has all of it). */
export interface WorkerGaugeSource {
  readonly name: string;
  readonly gpus: readonly { readonly uuid: string; readonly name: string }[];
  /** From the latest heartbeat. */
  readonly gpuStats: readonly GpuStats[];
  readonly slots: ReadonlyMap<string, { readonly slots: number; readonly busy: number }>;
  readonly vramBudgetBytes: number;
  /** Its trust score and standing, where result verification is on. */
  readonly trust?: { readonly score: number; readonly standing: string } | undefined;
}

export interface MetricsOptions {
  /** Node's process metrics (CPU, memory, event loop, GC) in the same registry. @default true */
  readonly defaultMetrics?: boolean;
  /** Queue depths are read from Redis at most this often, and only when scraped. @default 5 s */
  readonly queueRefreshMs?: number;
  /** How long a scrape waits for a queue refresh before it shows the last values. @default 1 s */
  readonly queueWaitMs?: number;
  readonly now?: () => number;
}

/** Seconds since `start`, a `performance.now()` reading. */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}

/**
 * A coordinator replica's metrics: its own prom-client registry (several coordinators, or
 * tests, in one process do not clash), every metric of COORDINATOR_METRICS registered from
 * the catalog, and typed helpers for the code that records them. Every helper is synchronous
 * and cheap; what must be read from elsewhere (queue depths, the connected workers) is read
 * only when scraped.
 *
 * @example
 * ```ts
 * const metrics = new Metrics();
 * metrics.jobSubmitted('describe', 'default');
 * const text = await metrics.registry.metrics();
 * ```
 */
export class Metrics {
  readonly registry = new Registry();
  readonly instruments: CoordinatorInstruments;
  private readonly now: () => number;
  private readonly queueRefreshMs: number;
  private readonly queueWaitMs: number;
  private queueSource: (() => Promise<readonly QueueDepth[]>) | undefined;
  private workerSource: (() => Iterable<WorkerGaugeSource>) | undefined;
  private queueDepths = new Map<string, Record<QueueState, number>>();
  private queueTriedAt = Number.NEGATIVE_INFINITY;
  private queueRefresh: Promise<void> | undefined;

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.queueRefreshMs = options.queueRefreshMs ?? 5_000;
    this.queueWaitMs = options.queueWaitMs ?? 1_000;
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const collects: Partial<Record<keyof Catalog, () => void | Promise<void>>> = {
      queueTasks: () => this.collectQueues(),
      workersConnected: () => this.collectWorkersConnected(),
      workerSlots: () => this.collectWorkerSlots(),
      gpuUtilization: () => this.collectGpus(this.instruments.gpuUtilization, (s) => s.utilizationPercent / 100),
      gpuMemoryUsed: () => this.collectGpus(this.instruments.gpuMemoryUsed, (s) => s.memoryUsedBytes),
      gpuMemoryTotal: () => this.collectGpus(this.instruments.gpuMemoryTotal, (s) => s.memoryTotalBytes),
      gpuTemperature: () => this.collectGpus(this.instruments.gpuTemperature, (s) => s.temperatureCelsius),
      gpuPower: () => this.collectGpus(this.instruments.gpuPower, (s) => s.powerWatts),
      workerVramBudget: () => this.collectVramBudgets(),
      workerTrust: () => this.collectTrust(),
    };
    const entries = (Object.keys(COORDINATOR_METRICS) as (keyof Catalog)[]).map((key): [keyof Catalog, Counter | Gauge | Histogram] => [
      key,
      register(COORDINATOR_METRICS[key], this.registry, collects[key]),
    ]);
    // The catalog's types carry each metric's labels; built in a loop, they are asserted once here.
    this.instruments = Object.fromEntries(entries) as unknown as CoordinatorInstruments;
  }

  /** The Content-Type of `text()` (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text of every metric (what GET /metrics answers). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Where queue depths come from (read when scraped, at most every queueRefreshMs). */
  setQueueSource(source: () => Promise<readonly QueueDepth[]>): void {
    this.queueSource = source;
  }

  /** The workers connected to this replica, read when scraped. */
  setWorkerSource(source: () => Iterable<WorkerGaugeSource>): void {
    this.workerSource = source;
  }

  jobSubmitted(pipeline: string, tenant: string): void {
    this.instruments.jobsSubmitted.inc({ pipeline, tenant });
  }

  /** A request was refused for a limit (LimitExceededError), named as its option ("maxInputsPerJob"). */
  limitRefused(limit: string): void {
    this.instruments.limitRefusals.inc({ limit });
  }

  /** A job ended (counted by the replica whose FINISH_JOB ended it, so once per job). */
  jobFinished(pipeline: string, tenant: string, outcome: JobOutcome, durationSeconds: number): void {
    this.instruments.jobsFinished.inc({ pipeline, tenant, outcome });
    this.instruments.jobDuration.observe({ pipeline, outcome }, Math.max(0, durationSeconds));
  }

  /**
   * A task ended (succeeded, failed, cancelled: counted by JobStore where its record ends, once
   * per task and run of its job), or one of its attempts failed and it will run again (retried:
   * counted by the replica that committed the failed attempt).
   */
  taskFinished(kind: string, outcome: TaskOutcome): void {
    this.instruments.tasksFinished.inc({ kind, outcome });
  }

  /** An attempt that ran on a worker ended: dispatch to its committed result. */
  taskRan(kind: string, outcome: TaskOutcome, runSeconds: number): void {
    this.instruments.taskRun.observe({ kind, outcome }, Math.max(0, runSeconds));
  }

  /** A task run on workers ended for good: from when it became ready to its last attempt's end. */
  taskLatency(kind: string, outcome: Exclude<TaskOutcome, 'retried'>, seconds: number): void {
    this.instruments.taskLatency.observe({ kind, outcome }, Math.max(0, seconds));
  }

  /** A task was handed to a worker: how long it had been ready, and how long handing it out took. */
  taskDispatched(kind: string, queuedSeconds: number, dispatchSeconds: number): void {
    this.instruments.taskQueued.observe({ kind }, Math.max(0, queuedSeconds));
    this.instruments.taskDispatch.observe({ kind }, Math.max(0, dispatchSeconds));
  }

  fannedOut(kind: string, shards: number): void {
    this.instruments.fanoutShards.observe({ kind }, shards);
  }

  leaseExpired(kind: string, worker: string): void {
    this.instruments.leaseExpiries.inc({ kind, worker: worker === '' ? 'unknown' : worker });
  }

  verificationReplica(kind: string): void {
    this.instruments.verificationReplicas.inc({ kind });
  }

  verificationVerdict(kind: string, verdict: 'agreed' | 'disagreed'): void {
    this.instruments.verificationVerdicts.inc({ kind, verdict });
  }

  verificationFailed(kind: string): void {
    this.instruments.verificationFailures.inc({ kind });
  }

  canaryChecked(kind: string, outcome: 'passed' | 'failed'): void {
    this.instruments.canaryChecks.inc({ kind, outcome });
  }

  workerQuarantined(): void {
    this.instruments.workersQuarantined.inc();
  }

  staleResultRejected(): void {
    this.instruments.staleResults.inc();
  }

  blobBytes(direction: BlobDirection, bytes: number): void {
    if (bytes > 0) this.instruments.blobBytes.inc({ direction }, bytes);
  }

  blobDeduplicated(): void {
    this.instruments.blobsDeduplicated.inc();
  }

  /** A gRPC call ended; `seconds` for unary calls only. */
  grpcRequest(service: string, method: string, code: string, seconds?: number): void {
    this.instruments.grpcRequests.inc({ service, method, code });
    if (seconds !== undefined) this.instruments.grpcDuration.observe({ service, method }, seconds);
  }

  /** A Redis round trip of `operation` that began at `start` (a `performance.now()` reading). */
  redisCommand(operation: string, start: number): void {
    this.instruments.redisDuration.observe({ operation }, secondsSince(start));
  }

  /** Runs `fn` and records its duration as `operation` when it succeeds. */
  async timeRedis<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    const result = await fn();
    this.redisCommand(operation, start);
    return result;
  }

  /**
   * Reads the queues again when the last read is older than queueRefreshMs (one read at a
   * time), waits a little for it, and shows what is known.
   */
  private async collectQueues(): Promise<void> {
    const source = this.queueSource;
    if (source && !this.queueRefresh && this.now() - this.queueTriedAt >= this.queueRefreshMs) {
      this.queueTriedAt = this.now();
      this.queueRefresh = this.refreshQueues(source).finally(() => {
        this.queueRefresh = undefined;
      });
    }
    if (this.queueRefresh) {
      const ac = new AbortController();
      await Promise.race([this.queueRefresh, delay(this.queueWaitMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
      ac.abort();
    }
    const gauge = this.instruments.queueTasks;
    gauge.reset();
    for (const [kind, counts] of this.queueDepths) for (const state of QUEUE_STATES) gauge.set({ kind, state }, counts[state]);
  }

  private async refreshQueues(source: () => Promise<readonly QueueDepth[]>): Promise<void> {
    try {
      const depths = new Map<string, Record<QueueState, number>>();
      for (const { kind, counts } of await source()) {
        const sum = depths.get(kind) ?? { waiting: 0, active: 0, delayed: 0, waiting_children: 0, failed: 0 };
        for (const state of QUEUE_STATES) sum[state] += counts[state] ?? 0;
        depths.set(kind, sum);
      }
      this.queueDepths = depths;
    } catch {
      // Redis is away: the last values stand until a read succeeds.
    }
  }

  private workers(): WorkerGaugeSource[] {
    return this.workerSource ? [...this.workerSource()] : [];
  }

  private collectWorkersConnected(): void {
    const gauge = this.instruments.workersConnected;
    gauge.reset();
    const byModel = new Map<string, number>();
    // A worker counts once, under its first GPU's model.
    for (const w of this.workers()) {
      const model = w.gpus[0]?.name || (w.gpus.length > 0 ? 'unknown' : 'none');
      byModel.set(model, (byModel.get(model) ?? 0) + 1);
    }
    for (const [gpu_model, n] of byModel) gauge.set({ gpu_model }, n);
  }

  private collectWorkerSlots(): void {
    const gauge = this.instruments.workerSlots;
    gauge.reset();
    const byKind = new Map<string, { total: number; busy: number }>();
    for (const w of this.workers()) {
      for (const [kind, slot] of w.slots) {
        const sum = byKind.get(kind) ?? { total: 0, busy: 0 };
        sum.total += slot.slots;
        sum.busy += slot.busy;
        byKind.set(kind, sum);
      }
    }
    for (const [kind, { total, busy }] of byKind) {
      gauge.set({ kind, state: 'total' }, total);
      gauge.set({ kind, state: 'busy' }, busy);
    }
  }

  /** One series per GPU of a connected worker; a worker that left has none. */
  private collectGpus(gauge: Gauge<'worker' | 'gpu' | 'gpu_model'>, value: (stats: GpuStats) => number): void {
    gauge.reset();
    for (const w of this.workers()) {
      for (const stats of w.gpuStats) {
        const gpu_model = w.gpus.find((g) => g.uuid === stats.uuid)?.name || 'unknown';
        gauge.set({ worker: w.name, gpu: stats.uuid, gpu_model }, value(stats));
      }
    }
  }

  private collectTrust(): void {
    const gauge = this.instruments.workerTrust;
    gauge.reset();
    for (const w of this.workers()) if (w.trust) gauge.set({ worker: w.name, standing: w.trust.standing }, w.trust.score);
  }

  private collectVramBudgets(): void {
    const gauge = this.instruments.workerVramBudget;
    gauge.reset();
    for (const w of this.workers()) gauge.set({ worker: w.name }, w.vramBudgetBytes);
  }
}

/** Registers one metric of the catalog, exactly as the catalog describes it. */
function register(spec: MetricSpec, registry: Registry, collect: (() => void | Promise<void>) | undefined): Counter | Gauge | Histogram {
  const base = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
  switch (spec.type) {
    case 'counter':
      return new Counter(base);
    case 'gauge':
      return new Gauge(collect ? { ...base, collect } : base);
    case 'histogram':
      return new Histogram(spec.buckets ? { ...base, buckets: [...spec.buckets] } : base);
  }
}
