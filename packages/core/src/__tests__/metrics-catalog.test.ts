import { describe, expect, it } from 'vitest';
import { ALL_METRICS, metricConventionProblem, type MetricSpec } from '../metrics-catalog.js';

describe('the metrics catalog', () => {
  it.each(ALL_METRICS.map((m) => [m.name, m] as const))('%s follows the conventions', (_name, spec) => {
    expect(metricConventionProblem(spec)).toBe('');
  });

  it('names every metric once', () => {
    const names = ALL_METRICS.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each<[string, MetricSpec, RegExp]>([
    ['a job id label', { name: 'mmgrid_tasks_finished_total', type: 'counter', help: 'x', labels: ['kind', 'job_id'] }, /label job_id has unbounded values/],
    ['a task label', { name: 'mmgrid_tasks_finished_total', type: 'counter', help: 'x', labels: ['task'] }, /label task has unbounded values/],
    ['a counter without _total', { name: 'mmgrid_jobs_submitted', type: 'counter', help: 'x', labels: [] }, /ends in _total/],
    ['a gauge with _total', { name: 'mmgrid_workers_total', type: 'gauge', help: 'x', labels: [] }, /only counters end in _total/],
    ['milliseconds', { name: 'mmgrid_task_run_ms', type: 'histogram', help: 'x', labels: [] }, /base units/],
    ['a histogram without a unit', { name: 'mmgrid_task_run', type: 'histogram', help: 'x', labels: [] }, /names its unit/],
    ['no prefix', { name: 'tasks_finished_total', type: 'counter', help: 'x', labels: [] }, /mmgrid_/],
    ['camel case label', { name: 'mmgrid_tasks_finished_total', type: 'counter', help: 'x', labels: ['taskKind'] }, /not snake case/],
  ])('refuses %s', (_name, spec, expected) => {
    expect(metricConventionProblem(spec)).toMatch(expected);
  });
});
