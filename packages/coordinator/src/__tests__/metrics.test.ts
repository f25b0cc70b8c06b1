import { describe, expect, it } from 'vitest';
import { COORDINATOR_METRICS, FORBIDDEN_LABELS, type MetricSpec } from '@mmgrid/core';
import type { GpuStats } from '@mmgrid/proto';
import { Metrics, type QueueDepth, type WorkerGaugeSource } from '../metrics.js';

interface Series {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** The series prom-client reports for one metric (histograms include _bucket, _sum, _count). */
async function series(metrics: Metrics, name: string): Promise<Series[]> {
  const all = await metrics.registry.getMetricsAsJSON();
  const found = all.find((m) => m.name === name);
  if (!found) throw new Error(`${name} is not registered`);
  return found.values as Series[];
}

async function valueOf(metrics: Metrics, name: string, labels: Record<string, string>, metricName = name): Promise<number | undefined> {
  const match = (await series(metrics, name)).find(
    (s) => (s.metricName ?? name) === metricName && Object.keys(labels).every((k) => String(s.labels[k]) === labels[k]) && Object.keys(s.labels).filter((k) => k !== 'le').length === Object.keys(labels).length,
  );
  return match?.value;
}

function gpu(uuid: string, over: Partial<GpuStats> = {}): GpuStats {
  return { uuid, utilizationPercent: 50, memoryUsedBytes: 1_000, memoryTotalBytes: 8_000, temperatureCelsius: 60, powerWatts: 120, ...over };
}

describe('Metrics: the catalog', () => {
  it('registers every coordinator metric of the catalog with its type and help, in its own registry', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const json = await metrics.registry.getMetricsAsJSON();
    const specs: MetricSpec[] = Object.values(COORDINATOR_METRICS);
    expect(json.map((m) => m.name).sort()).toEqual(specs.map((s) => s.name).sort());
    for (const spec of specs) {
      const m = json.find((j) => j.name === spec.name);
      expect(m?.type, spec.name).toBe(spec.type);
      expect(m?.help, spec.name).toBe(spec.help);
    }
  });

  it('uses exactly the catalog labels and buckets, as the exposition shows them', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    // One value for every metric, with every label set.
    for (const spec of Object.values(COORDINATOR_METRICS) as MetricSpec[]) {
      const labels = Object.fromEntries(spec.labels.map((l) => [l, 'x']));
      const instrument = metrics.registry.getSingleMetric(spec.name) as unknown as { inc?: (l: object, v: number) => void; set?: (l: object, v: number) => void; observe?: (l: object, v: number) => void };
      if (spec.type === 'counter') instrument.inc?.(labels, 1);
      else if (spec.type === 'histogram') instrument.observe?.(labels, 1);
    }
    for (const spec of Object.values(COORDINATOR_METRICS) as MetricSpec[]) {
      if (spec.type === 'gauge') continue;
      const values = await series(metrics, spec.name);
      for (const s of values) expect(Object.keys(s.labels).filter((l) => l !== 'le').sort(), spec.name).toEqual([...spec.labels].sort());
      if (spec.type === 'histogram') {
        const bounds = values.filter((s) => s.metricName === `${spec.name}_bucket`).map((s) => s.labels['le']);
        expect(bounds, spec.name).toEqual([...(spec.buckets ?? []), '+Inf']);
      }
    }
  });

  it('adds Node process metrics unless told not to', async () => {
    expect(await new Metrics().text()).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(await new Metrics({ defaultMetrics: false }).text()).not.toContain('process_cpu_user_seconds_total');
  });

  it('gives each instance its own registry, so replicas in one process do not clash', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.jobSubmitted('describe', 'default');
    expect(await valueOf(a, 'mmgrid_jobs_submitted_total', { pipeline: 'describe', tenant: 'default' })).toBe(1);
    expect(await valueOf(b, 'mmgrid_jobs_submitted_total', { pipeline: 'describe', tenant: 'default' })).toBeUndefined();
  });

  it('answers in the Prometheus text format 0.0.4', () => {
    expect(new Metrics({ defaultMetrics: false }).contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('Metrics: helpers', () => {
  it('counts jobs and times them by pipeline and outcome', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.jobSubmitted('describe', 't1');
    m.jobSubmitted('describe', 't1');
    m.jobFinished('describe', 't1', 'partial', 3);
    m.jobFinished('describe', 't1', 'completed', -1);
    expect(await valueOf(m, 'mmgrid_jobs_submitted_total', { pipeline: 'describe', tenant: 't1' })).toBe(2);
    expect(await valueOf(m, 'mmgrid_jobs_finished_total', { pipeline: 'describe', tenant: 't1', outcome: 'partial' })).toBe(1);
    expect(await valueOf(m, 'mmgrid_job_duration_seconds', { pipeline: 'describe', outcome: 'partial' }, 'mmgrid_job_duration_seconds_sum')).toBe(3);
    // A clock that went backwards is not a negative duration.
    expect(await valueOf(m, 'mmgrid_job_duration_seconds', { pipeline: 'describe', outcome: 'completed' }, 'mmgrid_job_duration_seconds_sum')).toBe(0);
  });

  it('counts task ends and retries apart from the times of runs and of whole tasks', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.taskFinished('image.ocr', 'retried');
    m.taskRan('image.ocr', 'retried', 0.2);
    m.taskFinished('image.ocr', 'succeeded');
    m.taskRan('image.ocr', 'succeeded', 0.5);
    m.taskLatency('image.ocr', 'succeeded', 3);
    // A task failed without running (its input failed): counted, but no run to time.
    m.taskFinished('image.ocr', 'failed');
    m.taskDispatched('image.ocr', 2, 0.001);
    expect(await valueOf(m, 'mmgrid_tasks_finished_total', { kind: 'image.ocr', outcome: 'failed' })).toBe(1);
    expect(await valueOf(m, 'mmgrid_tasks_finished_total', { kind: 'image.ocr', outcome: 'retried' })).toBe(1);
    expect(await valueOf(m, 'mmgrid_task_run_seconds', { kind: 'image.ocr', outcome: 'succeeded' }, 'mmgrid_task_run_seconds_count')).toBe(1);
    expect(await valueOf(m, 'mmgrid_task_run_seconds', { kind: 'image.ocr', outcome: 'retried' }, 'mmgrid_task_run_seconds_sum')).toBe(0.2);
    expect(await valueOf(m, 'mmgrid_task_run_seconds', { kind: 'image.ocr', outcome: 'failed' }, 'mmgrid_task_run_seconds_count')).toBeUndefined();
    expect(await valueOf(m, 'mmgrid_task_latency_seconds', { kind: 'image.ocr', outcome: 'succeeded' }, 'mmgrid_task_latency_seconds_sum')).toBe(3);
    expect(await valueOf(m, 'mmgrid_task_queued_seconds', { kind: 'image.ocr' }, 'mmgrid_task_queued_seconds_sum')).toBe(2);
    expect(await valueOf(m, 'mmgrid_task_dispatch_seconds', { kind: 'image.ocr' }, 'mmgrid_task_dispatch_seconds_count')).toBe(1);
  });

  it('times a Redis operation that succeeds, and not one that fails', async () => {
    const m = new Metrics({ defaultMetrics: false });
    expect(await m.timeRedis('commit', () => Promise.resolve(7))).toBe(7);
    await expect(m.timeRedis('commit', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await valueOf(m, 'mmgrid_redis_command_seconds', { operation: 'commit' }, 'mmgrid_redis_command_seconds_count')).toBe(1);
  });
});

describe('Metrics: queue depth', () => {
  /** A queue source answering `answers` in turn; a read waits for `gate` while one is set. */
  function fakeQueues(answers: QueueDepth[][]) {
    const state = { calls: 0, gate: undefined as Promise<void> | undefined };
    const read = async (): Promise<QueueDepth[]> => {
      const answer = answers[Math.min(state.calls, answers.length - 1)] ?? [];
      state.calls += 1;
      if (state.gate) await state.gate;
      return answer;
    };
    return { state, read };
  }

  it('sums the queues of a kind, and reads Redis at most once per refresh interval, when scraped', async () => {
    let now = 1_000_000;
    const m = new Metrics({ defaultMetrics: false, now: () => now, queueRefreshMs: 5_000 });
    const src = fakeQueues([
      [
        { kind: 'image.ocr', counts: { waiting: 3, active: 1 } },
        { kind: 'image.ocr', counts: { waiting: 2, delayed: 1 } },
        { kind: 'job.assemble', counts: { waiting_children: 4 } },
      ],
      [{ kind: 'image.ocr', counts: { waiting: 0, failed: 1 } }],
    ]);
    m.setQueueSource(src.read);
    expect(src.state.calls).toBe(0);
    await m.text();
    expect(src.state.calls).toBe(1);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'image.ocr', state: 'waiting' })).toBe(5);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'image.ocr', state: 'delayed' })).toBe(1);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'image.ocr', state: 'failed' })).toBe(0);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'job.assemble', state: 'waiting_children' })).toBe(4);
    now += 4_999;
    await m.text();
    expect(src.state.calls).toBe(1);
    now += 1;
    await m.text();
    expect(src.state.calls).toBe(2);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'image.ocr', state: 'failed' })).toBe(1);
    // A kind no queue reports any more is gone.
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'job.assemble', state: 'waiting_children' })).toBeUndefined();
  });

  it('has one read in flight at most, and shows the last values while a slow read goes on', async () => {
    let now = 0;
    const m = new Metrics({ defaultMetrics: false, now: () => now, queueRefreshMs: 5_000, queueWaitMs: 20 });
    const src = fakeQueues([[{ kind: 'a.b', counts: { waiting: 1 } }], [{ kind: 'a.b', counts: { waiting: 9 } }]]);
    m.setQueueSource(src.read);
    await m.text();
    now += 10_000;
    let open = (): void => undefined;
    src.state.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    // Both scrapes give up waiting and show the cached value; only one read was started.
    await Promise.all([m.text(), m.text()]);
    expect(src.state.calls).toBe(2);
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'a.b', state: 'waiting' })).toBe(1);
    open();
    // The read in flight now settles within microtasks, so the next scrape, which waits for it,
    // shows its values (no new read: the refresh interval has not passed).
    await m.text();
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'a.b', state: 'waiting' })).toBe(9);
    expect(src.state.calls).toBe(2);
  });

  it('keeps the last values when a read fails', async () => {
    let now = 0;
    let fail = false;
    const m = new Metrics({ defaultMetrics: false, now: () => now });
    m.setQueueSource(() => (fail ? Promise.reject(new Error('redis down')) : Promise.resolve([{ kind: 'a.b', counts: { active: 2 } }])));
    await m.text();
    fail = true;
    now += 60_000;
    await m.text();
    expect(await valueOf(m, 'mmgrid_queue_tasks', { kind: 'a.b', state: 'active' })).toBe(2);
  });
});

describe('Metrics: workers', () => {
  it('counts connected workers by GPU model and their slots, and drops a GPU series when its worker leaves', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const gpuWorker: WorkerGaugeSource = {
      name: 'rig-1',
      gpus: [{ uuid: 'GPU-1', name: 'NVIDIA RTX 4090' }],
      gpuStats: [gpu('GPU-1', { utilizationPercent: 75 })],
      slots: new Map([['image.ocr', { slots: 4, busy: 1 }]]),
      vramBudgetBytes: 16e9,
    };
    const cpuWorker: WorkerGaugeSource = { name: 'laptop', gpus: [], gpuStats: [], slots: new Map([['image.ocr', { slots: 2, busy: 2 }]]), vramBudgetBytes: 0 };
    let workers = [gpuWorker, cpuWorker, { ...cpuWorker, name: 'laptop-2' }];
    m.setWorkerSource(() => workers);
    await m.text();
    expect(await valueOf(m, 'mmgrid_workers_connected', { gpu_model: 'none' })).toBe(2);
    expect(await valueOf(m, 'mmgrid_workers_connected', { gpu_model: 'NVIDIA RTX 4090' })).toBe(1);
    expect(await valueOf(m, 'mmgrid_worker_slots', { kind: 'image.ocr', state: 'total' })).toBe(8);
    expect(await valueOf(m, 'mmgrid_worker_slots', { kind: 'image.ocr', state: 'busy' })).toBe(5);
    const gpuLabels = { worker: 'rig-1', gpu: 'GPU-1', gpu_model: 'NVIDIA RTX 4090' };
    expect(await valueOf(m, 'mmgrid_gpu_utilization_ratio', gpuLabels)).toBe(0.75);
    expect(await valueOf(m, 'mmgrid_gpu_memory_used_bytes', gpuLabels)).toBe(1_000);
    expect(await valueOf(m, 'mmgrid_gpu_memory_total_bytes', gpuLabels)).toBe(8_000);
    expect(await valueOf(m, 'mmgrid_gpu_temperature_celsius', gpuLabels)).toBe(60);
    expect(await valueOf(m, 'mmgrid_gpu_power_watts', gpuLabels)).toBe(120);
    expect(await valueOf(m, 'mmgrid_worker_vram_budget_bytes', { worker: 'rig-1' })).toBe(16e9);

    workers = [cpuWorker];
    expect(await series(m, 'mmgrid_gpu_utilization_ratio')).toEqual([]);
    expect(await series(m, 'mmgrid_gpu_power_watts')).toEqual([]);
    expect(await valueOf(m, 'mmgrid_workers_connected', { gpu_model: 'NVIDIA RTX 4090' })).toBeUndefined();
    expect(await valueOf(m, 'mmgrid_worker_vram_budget_bytes', { worker: 'rig-1' })).toBeUndefined();
    expect(await valueOf(m, 'mmgrid_worker_slots', { kind: 'image.ocr', state: 'total' })).toBe(2);
  });

  it('never labels a series with a job, task or lease id', async () => {
    const m = new Metrics();
    m.jobSubmitted('describe', 'default');
    m.taskFinished('image.ocr', 'succeeded');
    m.taskRan('image.ocr', 'succeeded', 1);
    m.setWorkerSource(() => [{ name: 'w', gpus: [{ uuid: 'G', name: 'T4' }], gpuStats: [gpu('G')], slots: new Map(), vramBudgetBytes: 1 }]);
    for (const metric of await m.registry.getMetricsAsJSON()) {
      for (const s of metric.values) for (const label of Object.keys(s.labels)) expect(FORBIDDEN_LABELS as readonly string[]).not.toContain(label);
    }
  });
});
