/** Workers and GPUs: the fleet as the coordinators see it from heartbeats, per worker and GPU model. */
import { COORDINATOR_METRICS as M, SCRAPE_JOBS, WORKER_METRICS as W } from '../catalog.js';
import type { Dashboard } from '../grafana-model.js';
import { bargauge, dashboard, q, row, stat, timeseries, variable } from '../panels.js';
import { avg, count, counter, div, gauge, labelValues, max, orZero, rate, sub, sum } from '../promql.js';

const gpuModel = variable('gpu_model', 'GPU model', labelValues(M.workersConnected, 'gpu_model'));
const worker = variable('worker', 'Worker', labelValues(M.gpuUtilization, 'worker', { gpu_model: gpuModel.re }));
const kind = variable('kind', 'Kind', labelValues(M.workerSlots, 'kind'));

type GpuMetric = typeof M.gpuUtilization | typeof M.gpuMemoryUsed | typeof M.gpuMemoryTotal | typeof M.gpuTemperature | typeof M.gpuPower;

/**
 * One series per GPU of the selected workers. A worker reports through the replica it is connected
 * to; `max by (worker, gpu, gpu_model)` keeps one series should two replicas briefly both hold it.
 */
const perGpu = (spec: GpuMetric) => max(gauge(spec, { worker: worker.re, gpu_model: gpuModel.re }), ['worker', 'gpu', 'gpu_model']);
const perWorker = (spec: GpuMetric) => sum(perGpu(spec), ['worker']);
const budget = max(gauge(M.workerVramBudget, { worker: worker.re }), ['worker']);
const slots = (state: 'busy' | 'total') => sum(gauge(M.workerSlots, { kind: kind.re, state }), ['kind']);
const scraped = { job: SCRAPE_JOBS.worker };

const GIB = 2 ** 30;

export const workersAndGpus: Dashboard = dashboard({
  uid: 'mmgrid-workers',
  title: 'mmgrid / Workers and GPUs',
  description: 'The worker fleet as the coordinators see it from heartbeats: utilisation, GPU memory against what owners allow, temperature, power, slots and lease expiries, per worker and GPU model.',
  variables: [gpuModel, worker, kind],
  rows: [
    row('Fleet', [
      stat({
        title: 'Workers connected',
        unit: 'short',
        thresholds: { base: 'red', steps: [[1, 'green']] },
        queries: [q(orZero(sum(gauge(M.workersConnected, { gpu_model: gpuModel.re }))), 'workers')],
      }),
      stat({ title: 'GPUs reporting', unit: 'short', queries: [q(orZero(count(perGpu(M.gpuUtilization))), 'GPUs')] }),
      stat({ title: 'Mean GPU utilisation', unit: 'percentunit', queries: [q(avg(perGpu(M.gpuUtilization)), 'utilisation')] }),
      stat({
        title: 'GPU memory in use',
        unit: 'percentunit',
        thresholds: { base: 'green', steps: [[0.85, 'orange'], [0.95, 'red']] },
        queries: [q(div(sum(perGpu(M.gpuMemoryUsed)), sum(perGpu(M.gpuMemoryTotal))), 'in use')],
      }),
      stat({
        title: 'Hottest GPU',
        unit: 'celsius',
        thresholds: { base: 'green', steps: [[80, 'orange'], [88, 'red']] },
        queries: [q(max(perGpu(M.gpuTemperature)), 'hottest')],
      }),
      stat({ title: 'Power draw', unit: 'watt', queries: [q(sum(perGpu(M.gpuPower)), 'power')] }),
      timeseries({
        title: 'Workers connected by GPU model',
        description: '"none" is a CPU-only worker.',
        unit: 'short',
        width: 24,
        stack: true,
        queries: [q(sum(gauge(M.workersConnected, { gpu_model: gpuModel.re }), ['gpu_model']), '{{gpu_model}}')],
      }),
    ]),
    row('Utilisation', [
      timeseries({
        title: 'GPU utilisation by worker',
        unit: 'percentunit',
        min: 0,
        max: 1,
        queries: [q(perGpu(M.gpuUtilization), '{{worker}} GPU {{gpu}}')],
      }),
      timeseries({
        title: 'GPU utilisation by GPU model',
        unit: 'percentunit',
        min: 0,
        max: 1,
        queries: [q(avg(perGpu(M.gpuUtilization), ['gpu_model']), '{{gpu_model}}')],
      }),
    ]),
    row('GPU memory', [
      timeseries({
        title: 'GPU memory used and total by worker',
        unit: 'bytes',
        queries: [q(perWorker(M.gpuMemoryUsed), '{{worker}} used'), q(perWorker(M.gpuMemoryTotal), '{{worker}} total')],
      }),
      bargauge({
        title: 'Headroom against the owner’s budget',
        description: 'GPU memory a worker’s owner lets the grid use, less what its GPUs hold now. Below zero: the worker is over its budget.',
        unit: 'bytes',
        thresholds: { base: 'red', steps: [[GIB, 'orange'], [4 * GIB, 'green']] },
        queries: [q(sub(budget, perWorker(M.gpuMemoryUsed)), '{{worker}}')],
      }),
      timeseries({
        title: 'GPU memory used against budget',
        description: 'Used over the budget the owner set; above 100% the worker is over it.',
        unit: 'percentunit',
        width: 24,
        thresholds: { base: 'green', steps: [[0.9, 'orange'], [1, 'red']] },
        thresholdLines: true,
        queries: [q(div(perWorker(M.gpuMemoryUsed), budget), '{{worker}}')],
      }),
    ]),
    row('Temperature and power', [
      timeseries({
        title: 'GPU temperature',
        unit: 'celsius',
        thresholds: { base: 'green', steps: [[80, 'orange'], [88, 'red']] },
        thresholdLines: true,
        queries: [q(perGpu(M.gpuTemperature), '{{worker}} GPU {{gpu}}')],
      }),
      timeseries({ title: 'GPU power draw', unit: 'watt', queries: [q(perGpu(M.gpuPower), '{{worker}} GPU {{gpu}}')] }),
    ]),
    row('Slots and leases', [
      timeseries({
        title: 'Slots by kind',
        description: 'Slots of the connected workers, busy against total.',
        unit: 'short',
        queries: [q(slots('busy'), '{{kind}} busy'), q(slots('total'), '{{kind}} total')],
      }),
      bargauge({
        title: 'Slots busy by kind',
        unit: 'percentunit',
        min: 0,
        max: 1,
        thresholds: { base: 'green', steps: [[0.8, 'orange'], [0.95, 'red']] },
        queries: [q(div(slots('busy'), slots('total')), '{{kind}}')],
      }),
      timeseries({
        title: 'Lease expiries by worker',
        description: 'Leases that lapsed because a worker stopped renewing them: a worker that shows up here again and again crashes, hangs or loses its connection.',
        unit: 'ops',
        width: 24,
        queries: [q(sum(rate(counter(M.leaseExpiries, { kind: kind.re })), ['worker']), '{{worker}}')],
      }),
    ]),
    row('Workers scraped directly', [
      timeseries({
        title: 'Busy slots on scraped workers',
        description: 'From the workers’ own /metrics, for the workers Prometheus can reach (most behind NAT are not scraped).',
        unit: 'short',
        width: 8,
        queries: [q(sum(gauge(W.slots, { ...scraped, state: 'busy', kind: kind.re }), ['instance', 'kind']), '{{instance}} {{kind}}')],
      }),
      timeseries({
        title: 'Tasks on scraped workers',
        unit: 'ops',
        width: 8,
        queries: [q(sum(rate(counter(W.tasks, { ...scraped, kind: kind.re })), ['instance', 'outcome']), '{{instance}} {{outcome}}')],
      }),
      timeseries({
        title: 'Scraped workers connected',
        description: '1 while the worker is connected to a coordinator.',
        unit: 'short',
        width: 8,
        min: 0,
        max: 1,
        queries: [q(max(gauge(W.connected, scraped), ['instance']), '{{instance}}')],
      }),
    ]),
  ],
});
