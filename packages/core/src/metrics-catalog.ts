/**
 * Every metric mmgrid exports, in one place: the coordinator and the worker register them from
 * here, and the Grafana dashboards (deploy/grafana) name them from here, so a dashboard cannot
 * query a metric that does not exist.
 *
 * Conventions (checked by a test): the `mmgrid_` prefix, snake case, base units in the name
 * (`_seconds`, `_bytes`, `_ratio`, `_celsius`, `_watts`), `_total` on counters and only on
 * counters, and bounded label sets: never a job, task or lease id. Labels name things there
 * are few of: kinds, pipelines, tenants, states, workers, GPUs.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
  /** Histogram buckets (upper bounds), in the metric's unit. */
  readonly buckets?: readonly number[];
}

/** Seconds, from 5 ms to an hour: queueing, dispatch, runs and whole jobs. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;
/** Seconds, from 100 µs to 1 s: Redis round trips and gRPC calls. */
export const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;
/** How many shards one step fans out to. */
export const FANOUT_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000] as const;

function metric<const S extends MetricSpec>(spec: S): S {
  return spec;
}

/** Metrics of a coordinator replica (its `/metrics`). Fleet metrics come from the workers' heartbeats. */
export const COORDINATOR_METRICS = {
  jobsSubmitted: metric({ name: 'mmgrid_jobs_submitted_total', type: 'counter', help: 'Jobs accepted, by pipeline and tenant.', labels: ['pipeline', 'tenant'] }),
  jobsFinished: metric({
    name: 'mmgrid_jobs_finished_total',
    type: 'counter',
    help: 'Jobs that ended, by pipeline, tenant and outcome (completed, partial, failed, cancelled).',
    labels: ['pipeline', 'tenant', 'outcome'],
  }),
  jobDuration: metric({
    name: 'mmgrid_job_duration_seconds',
    type: 'histogram',
    help: 'Submit (or RetryJob) to end of a job (end-to-end latency), by pipeline and outcome.',
    labels: ['pipeline', 'outcome'],
    buckets: DURATION_BUCKETS,
  }),
  tasksFinished: metric({
    name: 'mmgrid_tasks_finished_total',
    type: 'counter',
    help: 'Task attempts that ended, by kind and outcome (succeeded, failed, retried, cancelled).',
    labels: ['kind', 'outcome'],
  }),
  taskQueued: metric({
    name: 'mmgrid_task_queued_seconds',
    type: 'histogram',
    help: 'Time a task waited in its queue before a worker took it, by kind.',
    labels: ['kind'],
    buckets: DURATION_BUCKETS,
  }),
  taskDispatch: metric({
    name: 'mmgrid_task_dispatch_seconds',
    type: 'histogram',
    help: 'Time from taking a task out of its queue to handing it to a worker (placement, lease, send), by kind.',
    labels: ['kind'],
    buckets: FAST_BUCKETS,
  }),
  taskRun: metric({
    name: 'mmgrid_task_run_seconds',
    type: 'histogram',
    help: 'Time a task ran on a worker, from dispatch to its result, by kind and outcome.',
    labels: ['kind', 'outcome'],
    buckets: DURATION_BUCKETS,
  }),
  taskLatency: metric({
    name: 'mmgrid_task_latency_seconds',
    type: 'histogram',
    help: 'End-to-end time of a task run on workers, from when it became ready (its inputs ended) to its last attempt\'s end, retries and backoffs included, by kind and outcome.',
    labels: ['kind', 'outcome'],
    buckets: DURATION_BUCKETS,
  }),
  fanoutShards: metric({
    name: 'mmgrid_fanout_shards',
    type: 'histogram',
    help: 'Shards one step fanned out to (windows, frames, chunks), by step kind.',
    labels: ['kind'],
    buckets: FANOUT_BUCKETS,
  }),
  leaseExpiries: metric({
    name: 'mmgrid_lease_expiries_total',
    type: 'counter',
    help: 'Leases that lapsed (a worker stopped renewing them), by kind and by the worker that held them ("unknown" when no record names it).',
    labels: ['kind', 'worker'],
  }),
  limitRefusals: metric({
    name: 'mmgrid_limit_refusals_total',
    type: 'counter',
    help: 'Requests refused for a limit (RESOURCE_EXHAUSTED), by the limit, named as its coordinator option (maxInputsPerJob, maxLiveJobsPerTenant, submitRatePerTenant, maxBlobBytes, maxShards…).',
    labels: ['limit'],
  }),
  verificationReplicas: metric({
    name: 'mmgrid_verification_replicas_total',
    type: 'counter',
    help: 'Results kept as candidates while another worker checks the task (result verification), by kind.',
    labels: ['kind'],
  }),
  verificationVerdicts: metric({
    name: 'mmgrid_verification_verdicts_total',
    type: 'counter',
    help: "Workers' results judged when a task's verification settled, by kind and verdict (agreed with the quorum, or disagreed).",
    labels: ['kind', 'verdict'],
  }),
  verificationFailures: metric({
    name: 'mmgrid_verification_failures_total',
    type: 'counter',
    help: 'Tasks failed with VERIFICATION_FAILED: their results never reached a quorum, by kind.',
    labels: ['kind'],
  }),
  canaryChecks: metric({
    name: 'mmgrid_canary_checks_total',
    type: 'counter',
    help: 'Results checked against an answer known in advance (canaries), by kind and outcome (passed, failed).',
    labels: ['kind', 'outcome'],
  }),
  workersQuarantined: metric({
    name: 'mmgrid_workers_quarantined_total',
    type: 'counter',
    help: 'Workers quarantined (given no more tasks) because too many of their results disagreed.',
    labels: [],
  }),
  workerTrust: metric({
    name: 'mmgrid_worker_trust_ratio',
    type: 'gauge',
    help: "Trust score (0 to 1) of each worker connected to this replica, from its verified results (result verification on).",
    labels: ['worker', 'standing'],
  }),
  staleResults: metric({ name: 'mmgrid_stale_results_rejected_total', type: 'counter', help: 'Results refused because their lease was no longer current.', labels: [] }),
  queueTasks: metric({
    name: 'mmgrid_queue_tasks',
    type: 'gauge',
    help: 'Tasks in the queues, by kind and state (waiting, active, delayed, waiting_children, failed), refreshed every few seconds.',
    labels: ['kind', 'state'],
  }),
  workersConnected: metric({ name: 'mmgrid_workers_connected', type: 'gauge', help: 'Workers connected to this replica, by GPU model ("none" for CPU-only).', labels: ['gpu_model'] }),
  workerSlots: metric({ name: 'mmgrid_worker_slots', type: 'gauge', help: 'Slots of the workers connected to this replica, by kind and state (total, busy).', labels: ['kind', 'state'] }),
  gpuUtilization: metric({ name: 'mmgrid_gpu_utilization_ratio', type: 'gauge', help: 'GPU utilisation (0 to 1), from worker heartbeats.', labels: ['worker', 'gpu', 'gpu_model'] }),
  gpuMemoryUsed: metric({ name: 'mmgrid_gpu_memory_used_bytes', type: 'gauge', help: 'GPU memory in use, from worker heartbeats.', labels: ['worker', 'gpu', 'gpu_model'] }),
  gpuMemoryTotal: metric({ name: 'mmgrid_gpu_memory_total_bytes', type: 'gauge', help: 'GPU memory, from worker heartbeats.', labels: ['worker', 'gpu', 'gpu_model'] }),
  gpuTemperature: metric({ name: 'mmgrid_gpu_temperature_celsius', type: 'gauge', help: 'GPU temperature, from worker heartbeats.', labels: ['worker', 'gpu', 'gpu_model'] }),
  gpuPower: metric({ name: 'mmgrid_gpu_power_watts', type: 'gauge', help: 'GPU power draw, from worker heartbeats.', labels: ['worker', 'gpu', 'gpu_model'] }),
  workerVramBudget: metric({ name: 'mmgrid_worker_vram_budget_bytes', type: 'gauge', help: "GPU memory a worker's owner lets the grid use.", labels: ['worker'] }),
  blobBytes: metric({ name: 'mmgrid_blob_bytes_total', type: 'counter', help: 'Blob bytes received (in) and sent (out) by the blob service.', labels: ['direction'] }),
  blobsDeduplicated: metric({ name: 'mmgrid_blob_uploads_deduplicated_total', type: 'counter', help: 'Uploads whose bytes the store already held.', labels: [] }),
  grpcRequests: metric({ name: 'mmgrid_grpc_requests_total', type: 'counter', help: 'gRPC calls handled, by service, method and status code.', labels: ['service', 'method', 'code'] }),
  grpcDuration: metric({
    name: 'mmgrid_grpc_request_seconds',
    type: 'histogram',
    help: 'Time to handle a unary gRPC call, by service and method.',
    labels: ['service', 'method'],
    buckets: FAST_BUCKETS,
  }),
  redisDuration: metric({
    name: 'mmgrid_redis_command_seconds',
    type: 'histogram',
    help: "Redis round trips of the coordinator's own operations (ping, commit, fetch…), by operation.",
    labels: ['operation'],
    buckets: FAST_BUCKETS,
  }),
} as const satisfies Record<string, MetricSpec>;

/** Metrics of a worker (its own `/metrics`, for the machine's owner). */
export const WORKER_METRICS = {
  tasks: metric({ name: 'mmgrid_worker_tasks_total', type: 'counter', help: 'Tasks this worker ran, by kind and outcome (succeeded, failed, cancelled).', labels: ['kind', 'outcome'] }),
  taskRun: metric({ name: 'mmgrid_worker_task_run_seconds', type: 'histogram', help: 'Time this worker spent on a task, by kind.', labels: ['kind'], buckets: DURATION_BUCKETS }),
  slots: metric({ name: 'mmgrid_worker_local_slots', type: 'gauge', help: "This worker's slots, by kind and state (total, busy).", labels: ['kind', 'state'] }),
  connected: metric({ name: 'mmgrid_worker_connected', type: 'gauge', help: '1 while the worker is connected to a coordinator.', labels: [] }),
  reconnects: metric({ name: 'mmgrid_worker_reconnects_total', type: 'counter', help: 'Times the connection to the coordinator was lost.', labels: [] }),
  backendUp: metric({ name: 'mmgrid_worker_backend_up', type: 'gauge', help: '1 for a backend that passed its check at start, 0 for one left out.', labels: ['backend', 'type'] }),
  blobCache: metric({ name: 'mmgrid_worker_blob_cache_requests_total', type: 'counter', help: "Blob cache look-ups, by result (hit, miss).", labels: ['result'] }),
  blobCacheBytes: metric({ name: 'mmgrid_worker_blob_cache_bytes', type: 'gauge', help: 'Bytes held in the blob cache.', labels: [] }),
  blobDownloaded: metric({ name: 'mmgrid_worker_blob_downloaded_bytes_total', type: 'counter', help: 'Blob bytes downloaded from the coordinator.', labels: [] }),
  blobUploaded: metric({ name: 'mmgrid_worker_blob_uploaded_bytes_total', type: 'counter', help: 'Output blob bytes uploaded to the coordinator.', labels: [] }),
} as const satisfies Record<string, MetricSpec>;

/** Every metric either process exports (besides Node's default process metrics). */
export const ALL_METRICS: readonly MetricSpec[] = [...Object.values(COORDINATOR_METRICS), ...Object.values(WORKER_METRICS)];

/** Labels that must never be used: their values are unbounded. */
export const FORBIDDEN_LABELS = ['job', 'job_id', 'jobid', 'task', 'task_id', 'taskid', 'lease', 'lease_id', 'id', 'trace_id'] as const;

const UNIT_SUFFIXES = ['_seconds', '_bytes', '_ratio', '_celsius', '_watts'] as const;

/**
 * What is wrong with a metric's name and labels by the conventions above ("" when nothing).
 * Count-like metrics with no unit (tasks, workers, shards) are allowed without a suffix.
 */
export function metricConventionProblem(spec: MetricSpec): string {
  if (!/^mmgrid_[a-z][a-z0-9_]*[a-z0-9]$/.test(spec.name)) return `${spec.name}: names are mmgrid_ followed by snake case`;
  const base = spec.name.endsWith('_total') ? spec.name.slice(0, -'_total'.length) : spec.name;
  if (spec.type === 'counter' && !spec.name.endsWith('_total')) return `${spec.name}: a counter's name ends in _total`;
  if (spec.type !== 'counter' && spec.name.endsWith('_total')) return `${spec.name}: only counters end in _total`;
  if (/_(ms|milliseconds|kb|mb|gb|kib|mib|gib|percent|minutes|hours)(_|$)/.test(base)) return `${spec.name}: use base units (seconds, bytes, ratio)`;
  if (spec.type === 'histogram' && !UNIT_SUFFIXES.some((u) => base.endsWith(u)) && !/_shards$/.test(base)) return `${spec.name}: a histogram names its unit`;
  for (const label of spec.labels) {
    if (!/^[a-z][a-z0-9_]*$/.test(label)) return `${spec.name}: label ${label} is not snake case`;
    if ((FORBIDDEN_LABELS as readonly string[]).includes(label)) return `${spec.name}: label ${label} has unbounded values`;
  }
  if (spec.help.trim() === '') return `${spec.name}: no help text`;
  return '';
}
