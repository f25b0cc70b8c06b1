/**
 * The metrics the dashboards may name: mmgrid's catalog, the Node.js process metrics prom-client
 * exports by default, and the series Prometheus itself adds. A dashboard names a metric only
 * through one of these objects, never by a string.
 */
import type { MetricSpec } from '../../../packages/core/lib/index.js';

// deploy/grafana is not a workspace package (it ships JSON, not code), so it reaches
// @mmgrid/core's public entry point (its built lib/index.js) by path. The root `tsc -b` builds
// core first (this project references it) and scripts/gen-dashboards.mjs runs that build.
export { COORDINATOR_METRICS, WORKER_METRICS } from '../../../packages/core/lib/index.js';
export type { MetricSpec } from '../../../packages/core/lib/index.js';

function metric<const S extends MetricSpec>(spec: S): S {
  return spec;
}

/**
 * The few of prom-client's default metrics (collectDefaultMetrics) the dashboards use. They carry
 * no labels of their own; Prometheus adds `job` and `instance`. A test checks these names against
 * what prom-client really exports.
 */
export const NODE_METRICS = {
  cpu: metric({ name: 'process_cpu_seconds_total', type: 'counter', help: 'User and system CPU time spent, in seconds.', labels: [] }),
  residentMemory: metric({ name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size, in bytes.', labels: [] }),
  heapUsed: metric({ name: 'nodejs_heap_size_used_bytes', type: 'gauge', help: 'V8 heap in use, in bytes.', labels: [] }),
  eventLoopLagP99: metric({ name: 'nodejs_eventloop_lag_p99_seconds', type: 'gauge', help: '99th percentile of the event loop lag, in seconds.', labels: [] }),
} as const satisfies Record<string, MetricSpec>;

/** Series Prometheus writes for every scrape target. */
export const PROMETHEUS_METRICS = {
  up: metric({ name: 'up', type: 'gauge', help: '1 when the last scrape of the target succeeded.', labels: [] }),
} as const satisfies Record<string, MetricSpec>;

/**
 * Scrape job names, as deploy/prometheus/prometheus.yml spells them (a test compares the two).
 * Prometheus puts them in the `job` label of every series it scrapes.
 */
export const SCRAPE_JOBS = {
  coordinator: 'mmgrid-coordinator',
  worker: 'mmgrid-worker',
} as const;

/** The Prometheus data source, as deploy/grafana/provisioning/datasources/prometheus.yaml names it. */
export const DATASOURCE = { type: 'prometheus', uid: 'prometheus' } as const;
