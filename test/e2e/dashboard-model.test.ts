// The typed model the dashboards are written in (deploy/grafana/src): what it renders, and the
// mistakes it refuses. The `@ts-expect-error` lines are checked by `tsc -b`: each must be an error,
// so a change that lets one of these typos compile fails the build.
import { COORDINATOR_METRICS as M, NODE_METRICS as N } from '../../deploy/grafana/src/catalog.js';
import { dashboard, q, row, table, timeseries, variable } from '../../deploy/grafana/src/panels.js';
import { buckets, counter, div, gauge, histogramQuantile, labelValues, max, mul, or, rate, sum } from '../../deploy/grafana/src/promql.js';
import { describe, expect, it } from 'vitest';

const kind = variable('kind', 'Kind', labelValues(M.taskRun, 'kind'));

describe('the typed PromQL', () => {
  it.each([
    ['a counter rate by labels', sum(rate(counter(M.tasksFinished, { kind: kind.re, outcome: 'failed' })), ['kind']), 'sum by (kind) (rate(mmgrid_tasks_finished_total{kind=~"$kind", outcome="failed"}[$__rate_interval]))'],
    [
      'a quantile of a histogram',
      histogramQuantile(0.99, sum(rate(buckets(M.taskRun, { kind: kind.re })), ['le', 'kind'])),
      'histogram_quantile(0.99, sum by (le, kind) (rate(mmgrid_task_run_seconds_bucket{kind=~"$kind"}[$__rate_interval])))',
    ],
    ['a ratio of gauges', div(sum(gauge(M.workerSlots, { state: 'busy' })), sum(gauge(M.workerSlots, { state: 'total' }))), '(sum(mmgrid_worker_slots{state="busy"})) / (sum(mmgrid_worker_slots{state="total"}))'],
    ['a process metric of one scrape job', max(gauge(N.residentMemory, { job: 'mmgrid-coordinator' }), ['instance']), 'max by (instance) (process_resident_memory_bytes{job="mmgrid-coordinator"})'],
    [
      'a zero for the groups without a series',
      or(sum(rate(counter(M.jobsFinished, { outcome: 'partial' })), ['pipeline']), mul(sum(rate(counter(M.jobsFinished)), ['pipeline']), 0)),
      '(sum by (pipeline) (rate(mmgrid_jobs_finished_total{outcome="partial"}[$__rate_interval]))) or ((sum by (pipeline) (rate(mmgrid_jobs_finished_total[$__rate_interval]))) * 0)',
    ],
    ['a label value with a quote', gauge(M.queueTasks, { kind: 'a"b', state: { notRe: 'failed|delayed' } }), 'mmgrid_queue_tasks{kind="a\\"b", state!~"failed|delayed"}'],
  ])('renders %s', (_what, vector, promql) => {
    expect(vector.promql).toBe(promql);
  });

  it('makes a variable query from a histogram by its _count series', () => {
    expect(kind.model.query).toBe('label_values(mmgrid_task_run_seconds_count, kind)');
  });

  it('refuses a quantile outside 0 to 1', () => {
    expect(() => histogramQuantile(99, sum(rate(buckets(M.taskRun)), ['le']))).toThrow(/q is 99, not between 0 and 1/);
  });

  it('refuses typos at compile time', () => {
    // Never called: these lines are here for the type checker.
    const typos = (): unknown[] => [
      // @ts-expect-error -- a metric the catalog does not have
      counter(M.tasksFinishd),
      // @ts-expect-error -- a label the metric does not have
      counter(M.tasksFinished, { knd: 'image.ocr' }),
      // @ts-expect-error -- a metric without labels takes no kind
      counter(M.staleResults, { kind: 'image.ocr' }),
      // @ts-expect-error -- grouping by a label the series do not have
      sum(rate(counter(M.tasksFinished)), ['pipeline']),
      // @ts-expect-error -- a legend naming a label the query does not keep
      q(sum(rate(counter(M.tasksFinished)), ['kind']), '{{kind}} {{outcome}}'),
      // @ts-expect-error -- rate of a gauge
      rate(gauge(M.queueTasks)),
      // @ts-expect-error -- a gauge is not a counter
      counter(M.queueTasks),
      // @ts-expect-error -- a quantile of buckets summed without le
      histogramQuantile(0.5, sum(rate(buckets(M.taskRun)), ['kind'])),
      // @ts-expect-error -- dividing series with different labels
      div(sum(gauge(M.workerSlots), ['kind']), sum(gauge(M.workerSlots), ['state'])),
      // @ts-expect-error -- a variable on a label the metric does not have
      labelValues(M.jobsSubmitted, 'kind'),
    ];
    expect(typos).toBeTypeOf('function');
  });
});

describe('building a dashboard', () => {
  const retries = timeseries({ title: 'Retries', unit: 'ops', queries: [q(sum(rate(counter(M.tasksFinished, { kind: kind.re, outcome: 'retried' })), ['kind']), '{{kind}}')] });

  it('lays panels out left to right, row after row', () => {
    const d = dashboard({ uid: 'x', title: 'X', description: 'x', variables: [kind], rows: [row('A', [retries, retries, retries]), row('B', [retries])] });
    expect(d.panels.map((p) => [p.type, p.gridPos])).toEqual([
      ['row', { x: 0, y: 0, w: 24, h: 1 }],
      ['timeseries', { x: 0, y: 1, w: 12, h: 8 }],
      ['timeseries', { x: 12, y: 1, w: 12, h: 8 }],
      ['timeseries', { x: 0, y: 9, w: 12, h: 8 }],
      ['row', { x: 0, y: 17, w: 24, h: 1 }],
      ['timeseries', { x: 0, y: 18, w: 12, h: 8 }],
    ]);
    expect(d.panels.map((p) => p.id)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a query that uses a variable the dashboard does not define', () => {
    expect(() => dashboard({ uid: 'x', title: 'X', description: 'x', variables: [], rows: [row('A', [retries])] })).toThrow('x: panel "Retries" uses $kind, which the dashboard does not define');
  });

  it('refuses a variable whose query uses one defined after it', () => {
    const worker = variable('worker', 'Worker', labelValues(M.gpuUtilization, 'worker', { gpu_model: { re: '$gpu_model' } }));
    const gpuModel = variable('gpu_model', 'GPU model', labelValues(M.workersConnected, 'gpu_model'));
    expect(() => dashboard({ uid: 'x', title: 'X', description: 'x', variables: [worker, gpuModel], rows: [] })).toThrow('x: variable worker uses $gpu_model, not defined before it');
  });

  it('refuses a table sorted by a column it does not have', () => {
    const p99 = histogramQuantile(0.99, sum(rate(buckets(M.taskRun)), ['le', 'kind']));
    expect(() => table({ title: 'Slow', rowsBy: 'kind', sortBy: 'p90', columns: [{ title: 'p99', value: p99 }] })).toThrow('table "Slow": sortBy "p90" is not one of its columns (p99)');
  });
});
