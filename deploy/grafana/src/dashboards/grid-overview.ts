/** Grid overview: is the grid keeping up? Jobs in and out, latency, queues, failures, the fleet, the coordinators. */
import { COORDINATOR_METRICS as M, NODE_METRICS as N, PROMETHEUS_METRICS as P, SCRAPE_JOBS } from '../catalog.js';
import type { Dashboard } from '../grafana-model.js';
import { dashboard, q, row, stat, timeseries, variable } from '../panels.js';
import { buckets, counter, div, gauge, histogramQuantile, labelValues, max, orZero, rate, sum } from '../promql.js';

const pipeline = variable('pipeline', 'Pipeline', labelValues(M.jobsSubmitted, 'pipeline'));
const kind = variable('kind', 'Kind', labelValues(M.queueTasks, 'kind'));

const submitted = sum(rate(counter(M.jobsSubmitted, { pipeline: pipeline.re })));
const finished = counter(M.jobsFinished, { pipeline: pipeline.re });
const failed = counter(M.jobsFinished, { pipeline: pipeline.re, outcome: 'failed' });
const coordinator = { job: SCRAPE_JOBS.coordinator };

// Every replica reports the same shared queues: take one replica's view, not the sum.
const waiting = sum(max(gauge(M.queueTasks, { kind: kind.re, state: 'waiting' }), ['kind']));
const slots = (state: 'busy' | 'total') => sum(gauge(M.workerSlots, { kind: kind.re, state }));

const latency = (quantile: number) => histogramQuantile(quantile, sum(rate(buckets(M.jobDuration, { pipeline: pipeline.re })), ['le']));

const OUTCOME_COLORS = { completed: 'green', partial: 'orange', failed: 'red', cancelled: 'text' } as const;

export const gridOverview: Dashboard = dashboard({
  uid: 'mmgrid-overview',
  title: 'mmgrid / Grid overview',
  description: 'Is the grid keeping up: jobs in and out, end-to-end latency, queues, task failures, the worker fleet and the coordinator replicas.',
  variables: [pipeline, kind],
  rows: [
    row('Now', [
      stat({ title: 'Jobs submitted', unit: 'suffix: jobs/s', decimals: 2, queries: [q(orZero(submitted), 'submitted')] }),
      stat({ title: 'Jobs finished', unit: 'suffix: jobs/s', decimals: 2, queries: [q(orZero(sum(rate(finished))), 'finished')] }),
      stat({
        title: 'Job failure ratio',
        description: 'Failed jobs over all jobs that ended. No data while no job ends.',
        unit: 'percentunit',
        thresholds: { base: 'green', steps: [[0.05, 'orange'], [0.2, 'red']] },
        // The failed series exists only once a job has failed: 0, not no data, before that.
        queries: [q(div(orZero(sum(rate(failed))), sum(rate(finished))), 'failed')],
      }),
      stat({ title: 'Tasks waiting', unit: 'short', queries: [q(orZero(waiting), 'waiting')] }),
      stat({
        title: 'Workers connected',
        unit: 'short',
        thresholds: { base: 'red', steps: [[1, 'green']] },
        queries: [q(orZero(sum(gauge(M.workersConnected))), 'workers')],
      }),
      stat({
        title: 'Slots busy',
        unit: 'percentunit',
        thresholds: { base: 'green', steps: [[0.8, 'orange'], [0.95, 'red']] },
        queries: [q(div(slots('busy'), slots('total')), 'busy')],
      }),
    ]),
    row('Jobs', [
      timeseries({
        title: 'Jobs submitted by pipeline',
        unit: 'suffix: jobs/s',
        queries: [q(sum(rate(counter(M.jobsSubmitted, { pipeline: pipeline.re })), ['pipeline']), '{{pipeline}}')],
      }),
      timeseries({
        title: 'Jobs finished by outcome',
        unit: 'suffix: jobs/s',
        stack: true,
        colors: OUTCOME_COLORS,
        queries: [q(sum(rate(finished), ['outcome']), '{{outcome}}')],
      }),
      timeseries({
        title: 'End-to-end latency',
        description: 'Submit to end of a job, over all pipelines selected.',
        unit: 's',
        width: 24,
        legendCalcs: ['mean', 'max', 'lastNotNull'],
        queries: [q(latency(0.5), 'p50'), q(latency(0.9), 'p90'), q(latency(0.99), 'p99')],
      }),
    ]),
    row('Queues and tasks', [
      timeseries({
        title: 'Queue depth by kind and state',
        description: 'Tasks in the shared queues (one replica’s view: every replica reports the same queues).',
        unit: 'short',
        queries: [q(max(gauge(M.queueTasks, { kind: kind.re }), ['kind', 'state']), '{{kind}} {{state}}')],
      }),
      timeseries({
        title: 'Task failures and retries',
        unit: 'ops',
        queries: [q(sum(rate(counter(M.tasksFinished, { kind: kind.re, outcome: { re: 'failed|retried' } })), ['kind', 'outcome']), '{{kind}} {{outcome}}')],
      }),
    ]),
    row('Fleet', [
      timeseries({
        title: 'Workers connected by GPU model',
        description: '"none" is a CPU-only worker.',
        unit: 'short',
        stack: true,
        queries: [q(sum(gauge(M.workersConnected), ['gpu_model']), '{{gpu_model}}')],
      }),
      timeseries({
        title: 'Slots busy and total',
        unit: 'short',
        colors: { busy: 'orange', total: 'text' },
        queries: [q(slots('busy'), 'busy'), q(slots('total'), 'total')],
      }),
    ]),
    row('Coordinators', [
      timeseries({
        title: 'Coordinator CPU',
        description: 'CPU time per second of each replica (1 = one core busy).',
        unit: 'percentunit',
        width: 8,
        queries: [q(sum(rate(counter(N.cpu, coordinator)), ['instance']), '{{instance}}')],
      }),
      timeseries({
        title: 'Coordinator memory',
        unit: 'bytes',
        width: 8,
        queries: [
          q(max(gauge(N.residentMemory, coordinator), ['instance']), '{{instance}} resident'),
          q(max(gauge(N.heapUsed, coordinator), ['instance']), '{{instance}} heap'),
        ],
      }),
      timeseries({
        title: 'Coordinators up',
        description: 'Whether Prometheus could scrape each replica.',
        unit: 'short',
        width: 8,
        min: 0,
        max: 1,
        queries: [q(max(gauge(P.up, coordinator), ['instance']), '{{instance}}')],
      }),
    ]),
  ],
});
