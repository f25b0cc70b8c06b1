import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { WORKER_METRICS, type MetricSpec } from '@mmgrid/core';

type Catalog = typeof WORKER_METRICS;
type LabelOf<S extends MetricSpec> = S['labels'][number];
type InstrumentOf<S extends MetricSpec> = S['type'] extends 'counter' ? Counter<LabelOf<S>> : S['type'] extends 'gauge' ? Gauge<LabelOf<S>> : Histogram<LabelOf<S>>;

/** The prom-client instrument of each entry of `WORKER_METRICS`, labelled as the catalog says. */
export type WorkerInstruments = { readonly [K in keyof Catalog]: InstrumentOf<Catalog[K]> };

/** How a task ended on this worker: `cancelled` when it was stopped from outside (cancel, drain, lost lease). */
export type WorkerTaskOutcome = 'succeeded' | 'failed' | 'cancelled';

export type BlobCacheResult = 'hit' | 'miss';

export interface WorkerMetricsOptions {
  /** Also export Node's process metrics (CPU, memory, event loop lag, GC). @default true */
  processMetrics?: boolean;
}

function register(spec: MetricSpec, registry: Registry): Counter | Gauge | Histogram {
  const config = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
  switch (spec.type) {
    case 'counter':
      return new Counter(config);
    case 'gauge':
      return new Gauge(config);
    case 'histogram':
      return new Histogram(spec.buckets ? { ...config, buckets: [...spec.buckets] } : config);
  }
}

/**
 * A worker's Prometheus metrics: every entry of `WORKER_METRICS` (the catalog names them, so
 * dashboards and this file cannot drift), in a registry of its own rather than prom-client's
 * global one, so two daemons in one process (tests) do not share counts.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly instruments: WorkerInstruments;

  constructor(options: WorkerMetricsOptions = {}) {
    // One place where the catalog's static types meet prom-client's: each instrument is built
    // from its spec, so its type and labels are the spec's.
    this.instruments = Object.fromEntries(Object.entries(WORKER_METRICS).map(([key, spec]) => [key, register(spec, this.registry)])) as unknown as WorkerInstruments;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.setConnected(false);
    // Series that exist from the start read 0 rather than missing in a fresh worker's scrape.
    this.instruments.reconnects.inc(0);
    for (const result of ['hit', 'miss'] as const) this.instruments.blobCache.inc({ result }, 0);
    this.instruments.blobCacheBytes.set(0);
    this.instruments.blobDownloaded.inc(0);
    this.instruments.blobUploaded.inc(0);
  }

  /** A task ended after `seconds` on this worker (fetching its inputs included). */
  taskFinished(kind: string, outcome: WorkerTaskOutcome, seconds: number): void {
    this.instruments.tasks.inc({ kind, outcome });
    this.instruments.taskRun.observe({ kind }, seconds);
  }

  /** The slots offered per kind, none busy yet; each kind's task series start at 0. */
  setSlots(slots: Readonly<Record<string, number>>): void {
    for (const [kind, total] of Object.entries(slots)) {
      this.instruments.slots.set({ kind, state: 'total' }, total);
      this.instruments.slots.set({ kind, state: 'busy' }, 0);
      for (const outcome of ['succeeded', 'failed', 'cancelled'] as const) this.instruments.tasks.inc({ kind, outcome }, 0);
      this.instruments.taskRun.zero({ kind });
    }
  }

  setBusySlots(kind: string, busy: number): void {
    this.instruments.slots.set({ kind, state: 'busy' }, busy);
  }

  setConnected(connected: boolean): void {
    this.instruments.connected.set(connected ? 1 : 0);
  }

  /** A connection that had been welcomed ended without the worker asking for it. */
  connectionLost(): void {
    this.instruments.reconnects.inc();
  }

  /** A backend's start-up check: `up` when it passed and its kinds are offered. */
  backendChecked(backend: { readonly name: string; readonly type: string }, up: boolean): void {
    this.instruments.backendUp.set({ backend: backend.name, type: backend.type }, up ? 1 : 0);
  }

  blobLookup(result: BlobCacheResult): void {
    this.instruments.blobCache.inc({ result });
  }

  setBlobCacheBytes(bytes: number): void {
    this.instruments.blobCacheBytes.set(bytes);
  }

  blobDownloaded(bytes: number): void {
    this.instruments.blobDownloaded.inc(bytes);
  }

  blobUploaded(bytes: number): void {
    this.instruments.blobUploaded.inc(bytes);
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
