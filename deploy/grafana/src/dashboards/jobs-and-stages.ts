/** Jobs and stages: where a job's time goes, per pipeline and per task kind, and what goes wrong. */
import { COORDINATOR_METRICS as M } from '../catalog.js';
import type { Dashboard } from '../grafana-model.js';
import { bargauge, dashboard, heatmap, q, row, table, timeseries, variable } from '../panels.js';
import { buckets, counter, div, histogramQuantile, increase, labelValues, mul, observations, observedSum, or, rate, sum, type Window } from '../promql.js';

const pipeline = variable('pipeline', 'Pipeline', labelValues(M.jobsSubmitted, 'pipeline'));
const kind = variable('kind', 'Kind', labelValues(M.taskRun, 'kind'));

const byKind = { kind: kind.re };

const jobLatency = (quantile: number) => histogramQuantile(quantile, sum(rate(buckets(M.jobDuration, { pipeline: pipeline.re })), ['le', 'pipeline']));
const queued = (quantile: number) => histogramQuantile(quantile, sum(rate(buckets(M.taskQueued, byKind)), ['le', 'kind']));
const ran = (quantile: number, window: Window = '$__rate_interval') =>
  histogramQuantile(quantile, sum(increase(buckets(M.taskRun, byKind), window), ['le', 'kind']));
const dispatched = (quantile: number) => histogramQuantile(quantile, sum(rate(buckets(M.taskDispatch, byKind)), ['le', 'kind']));
const fanout = (quantile: number) => histogramQuantile(quantile, sum(rate(buckets(M.fanoutShards, byKind)), ['le', 'kind']));
const taskRate = (outcome: string) => sum(rate(counter(M.tasksFinished, { kind: kind.re, outcome })), ['kind']);

const finished = (outcome?: string) => counter(M.jobsFinished, outcome === undefined ? { pipeline: pipeline.re } : { pipeline: pipeline.re, outcome });
const ended = sum(increase(finished(), '$__range'), ['pipeline']);

export const jobsAndStages: Dashboard = dashboard({
  uid: 'mmgrid-jobs',
  title: 'mmgrid / Jobs and stages',
  description: 'Where a job’s time goes, per pipeline and per task kind: queue time against run time, dispatch, fan-out, stragglers, retries, lease expiries and partial results.',
  variables: [pipeline, kind],
  rows: [
    row('Jobs by pipeline', [
      timeseries({
        title: 'Jobs finished by pipeline and outcome',
        unit: 'suffix: jobs/s',
        queries: [q(sum(rate(finished()), ['pipeline', 'outcome']), '{{pipeline}} {{outcome}}')],
      }),
      timeseries({
        title: 'End-to-end latency by pipeline',
        description: 'Submit to end of a job, p50 and p99.',
        unit: 's',
        queries: [q(jobLatency(0.5), '{{pipeline}} p50'), q(jobLatency(0.99), '{{pipeline}} p99')],
      }),
      timeseries({
        title: 'Partial results by pipeline',
        description: 'Jobs that ended with some shards failed: their results cover part of the input.',
        unit: 'suffix: jobs/s',
        queries: [q(sum(rate(finished('partial')), ['pipeline']), '{{pipeline}}')],
      }),
      bargauge({
        title: 'Share of jobs partial, over the time range',
        unit: 'percentunit',
        min: 0,
        max: 1,
        thresholds: { base: 'green', steps: [[0.01, 'orange'], [0.1, 'red']] },
        // 0 for a pipeline none of whose jobs was partial (it has no partial series at all).
        queries: [q(div(or(sum(increase(finished('partial'), '$__range'), ['pipeline']), mul(ended, 0)), ended), '{{pipeline}}')],
      }),
    ]),
    row('Queue time and run time by kind', [
      timeseries({
        title: 'Queue time against run time: $kind',
        description: 'Time tasks of this kind waited for a worker, against the time they ran. Queue time above run time: more workers (or slots) for this kind would help.',
        unit: 's',
        repeat: kind,
        queries: [q(queued(0.5), 'queued p50'), q(queued(0.99), 'queued p99'), q(ran(0.5), 'ran p50'), q(ran(0.99), 'ran p99')],
      }),
      timeseries({
        title: 'Dispatch latency by kind',
        description: 'From taking a task out of its queue to handing it to a worker: placement, lease, send.',
        unit: 's',
        width: 24,
        queries: [q(dispatched(0.5), '{{kind}} p50'), q(dispatched(0.99), '{{kind}} p99')],
      }),
    ]),
    row('Fan-out', [
      heatmap({
        title: 'Fan-out width',
        description: 'How many shards steps fanned out to (windows, frames, chunks).',
        unit: 'short',
        buckets: sum(increase(buckets(M.fanoutShards, byKind)), ['le']),
      }),
      timeseries({
        title: 'Fan-out width by kind',
        unit: 'short',
        queries: [q(fanout(0.5), '{{kind}} p50'), q(fanout(0.99), '{{kind}} p99')],
      }),
      bargauge({
        title: 'Mean shards per step, over the time range',
        unit: 'short',
        width: 24,
        height: 6,
        queries: [q(div(sum(increase(observedSum(M.fanoutShards, byKind), '$__range'), ['kind']), sum(increase(observations(M.fanoutShards, byKind), '$__range'), ['kind'])), '{{kind}}')],
      }),
    ]),
    row('Stragglers', [
      timeseries({
        title: 'Straggler ratio by kind (run time p99 / p50)',
        description: 'How much longer the slowest tasks of a kind take than the typical one. A high ratio on a fanned-out kind holds whole jobs back.',
        unit: 'short',
        thresholds: { base: 'green', steps: [[5, 'orange'], [20, 'red']] },
        thresholdLines: true,
        queries: [q(div(ran(0.99), ran(0.5)), '{{kind}}')],
      }),
      table({
        title: 'Slowest kinds, over the time range',
        unit: 's',
        rowsBy: 'kind',
        sortBy: 'p99',
        columns: [
          { title: 'p50', value: ran(0.5, '$__range') },
          { title: 'p99', value: ran(0.99, '$__range') },
          { title: 'p99 / p50', value: div(ran(0.99, '$__range'), ran(0.5, '$__range')), unit: 'short' },
          { title: 'runs', value: sum(increase(observations(M.taskRun, byKind), '$__range'), ['kind']), unit: 'short' },
        ],
      }),
    ]),
    row('Retries and faults', [
      timeseries({
        title: 'Retries and failures by kind',
        description: 'Task attempts that failed and were tried again (retried), or failed for good (failed).',
        unit: 'ops',
        queries: [q(taskRate('retried'), '{{kind}} retried'), q(taskRate('failed'), '{{kind}} failed')],
      }),
      timeseries({
        title: 'Lease expiries by kind',
        description: 'Leases that lapsed because a worker stopped renewing them (it crashed, hung or lost its connection); the task runs again elsewhere.',
        unit: 'ops',
        queries: [q(sum(rate(counter(M.leaseExpiries, byKind)), ['kind']), '{{kind}}')],
      }),
      timeseries({
        title: 'Stale results rejected',
        description: 'Results refused because their lease was no longer current: a worker finished after its lease lapsed and the task had moved on.',
        unit: 'ops',
        queries: [q(sum(rate(counter(M.staleResults))), 'rejected')],
      }),
      timeseries({
        title: 'Task outcomes by kind',
        unit: 'ops',
        stack: true,
        queries: [q(sum(rate(counter(M.tasksFinished, byKind)), ['kind', 'outcome']), '{{kind}} {{outcome}}')],
      }),
    ]),
  ],
});
