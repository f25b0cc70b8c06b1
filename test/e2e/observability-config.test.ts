// The monitoring configuration an operator deploys: Prometheus' scrape config and alerting rules,
// Grafana's provisioning and the dashboards generated from deploy/grafana/src. Every query names
// only metrics the processes export, with labels those metrics have.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseYamlSource } from '@mmgrid/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  alertExprs,
  dashboardQueries,
  knownSeries,
  labelValuesQuery,
  PROMETHEUS_DIR,
  PromqlSyntaxError,
  readDashboards,
  REPO_ROOT,
  selectorsIn,
  seriesProblems,
  variableQueries,
} from '../helpers/observability.js';

const run = promisify(execFile);

/** Runs a tool and resolves with its exit code and output (a missing tool says how to install it). */
async function tool(cmd: string, args: readonly string[], cwd = REPO_ROOT): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed. Install it with: sudo apt-get install -y prometheus (or run scripts/install.sh)`, { cause: err });
    return { code: typeof e.code === 'number' ? e.code : 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function yamlFile(...parts: string[]): Promise<unknown> {
  const file = path.join(REPO_ROOT, ...parts);
  return parseYamlSource(await readFile(file, 'utf8'), file).value;
}

let known: Map<string, readonly string[]>;

beforeAll(async () => {
  known = await knownSeries();
});

describe('the Prometheus configuration', () => {
  it('is a valid config that loads the alerting rules', async () => {
    const result = await tool('promtool', ['check', 'config', 'deploy/prometheus/prometheus.yml']);
    expect(result.output).toMatch(/SUCCESS: 1 rule files found/);
    expect(result.code, result.output).toBe(0);
  });

  it('has valid alerting rules', async () => {
    const result = await tool('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml']);
    expect(result.code, result.output).toBe(0);
  });

  it('has rules that fire when they should and only then (promtool test rules)', async () => {
    const result = await tool('promtool', ['test', 'rules', 'alerts.test.yml'], PROMETHEUS_DIR);
    expect(result.code, result.output).toBe(0);
  });

  it('scrapes both coordinator replicas and the worker, every 15 s', async () => {
    const config = (await yamlFile('deploy/prometheus/prometheus.yml')) as {
      global: { scrape_interval: string };
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(config.global.scrape_interval).toBe('15s');
    const jobs = Object.fromEntries(config.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]));
    expect(jobs).toEqual({ 'mmgrid-coordinator': ['coordinator-1:9464', 'coordinator-2:9464'], 'mmgrid-worker': ['worker:9465'] });
  });

  it('names, in every rule, only metrics the grid exports, with labels they have', async () => {
    const rules = await alertExprs();
    expect(rules.map((r) => r.where)).toEqual(
      expect.arrayContaining(
        [
          'MmgridNoWorkersConnected',
          'MmgridQueueGrowingWhileWorkersIdle',
          'MmgridJobFailureRatioHigh',
          'MmgridLeaseExpiriesSpiking',
          'MmgridGpuTemperatureHigh',
          'MmgridCoordinatorDown',
        ].map((name) => `alerts.yml ${name}`),
      ),
    );
    for (const r of rules) {
      expect(selectorsIn(r.expr).length, r.where).toBeGreaterThan(0);
      expect(seriesProblems(r.expr, known), `${r.where}: ${r.expr}`).toEqual([]);
    }
  });
});

describe('the Grafana dashboards', () => {
  it('are what deploy/grafana/src generates (pnpm dashboards:check)', async () => {
    const result = await tool(process.execPath, ['scripts/gen-dashboards.mjs', '--check']);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/dashboards are current/);
  });

  it('are the three dashboards, each with its own uid', async () => {
    const dashboards = await readDashboards();
    expect([...dashboards.keys()]).toEqual(['grid-overview.json', 'jobs-and-stages.json', 'workers-and-gpus.json']);
    const uids = [...dashboards.values()].map((d) => d.uid);
    expect(new Set(uids).size).toBe(3);
  });

  it('query only metrics the grid exports, with labels they have', async () => {
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(30);
    for (const q of queries) {
      expect(selectorsIn(q.expr).length, q.where).toBeGreaterThan(0);
      expect(seriesProblems(q.expr, known), `${q.where}: ${q.expr}`).toEqual([]);
    }
  });

  it('take the values of their variables from labels that metrics have', async () => {
    const variables = await variableQueries();
    expect(variables.map((v) => v.where)).toEqual(expect.arrayContaining(['grid-overview.json $pipeline', 'jobs-and-stages.json $kind', 'workers-and-gpus.json $worker']));
    for (const v of variables) {
      const parsed = labelValuesQuery(v.expr);
      expect(parsed, v.where).toBeDefined();
      if (!parsed) continue;
      expect(seriesProblems(parsed.selector, known), v.where).toEqual([]);
      const [selector] = selectorsIn(parsed.selector);
      expect(known.get(selector?.name ?? ''), v.where).toContain(parsed.label);
    }
  });

  it('scope their queries to scrape jobs the Prometheus config has', async () => {
    const config = (await yamlFile('deploy/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string }[] };
    const jobNames = config.scrape_configs.map((c) => c.job_name);
    const queries = [...(await dashboardQueries()), ...(await alertExprs())];
    const used = new Set(queries.flatMap((q) => [...q.expr.matchAll(/\bjob="([^"]*)"/g)].map((m) => m[1])));
    expect(used.size).toBeGreaterThan(0);
    for (const job of used) expect(jobNames).toContain(job);
  });

  it('use the data source Grafana is provisioned with', async () => {
    const provisioning = (await yamlFile('deploy/grafana/provisioning/datasources/prometheus.yaml')) as { datasources: { uid: string; type: string; url: string }[] };
    expect(provisioning.datasources).toEqual([expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })]);
    for (const [file, d] of await readDashboards()) {
      const uids = new Set([...d.templating.list.map((v) => v.datasource.uid), ...d.panels.flatMap((p) => [p.datasource?.uid ?? 'prometheus', ...(p.targets ?? []).map((t) => t.datasource.uid)])]);
      expect([...uids], file).toEqual(['prometheus']);
    }
  });

  it('are loaded from the folder the provisioning names', async () => {
    const provisioning = (await yamlFile('deploy/grafana/provisioning/dashboards/mmgrid.yaml')) as { providers: { type: string; options: { path: string } }[] };
    expect(provisioning.providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) as unknown })]);
  });
});

describe('reading PromQL for the checks above', () => {
  it.each<[string, string, { name: string; labels: string[] }[]]>([
    ['a quantile of a histogram', 'histogram_quantile(0.99, sum by (le, kind) (rate(mmgrid_task_run_seconds_bucket{kind=~"$kind"}[$__rate_interval])))', [{ name: 'mmgrid_task_run_seconds_bucket', labels: ['kind'] }]],
    ['a ratio with offset and scalars', 'sum(rate(a_total[5m] offset 1h)) / sum(b) > 0.2 * 1e3', [{ name: 'a_total', labels: [] }, { name: 'b', labels: [] }]],
    ['vector matching', '(x > 0) and on (kind) sum without (instance) (y{state="busy", job!~"a}b"})', [{ name: 'x', labels: [] }, { name: 'y', labels: ['state', 'job'] }]],
    ['a selector without a name', '{__name__="x"}', [{ name: '', labels: ['__name__'] }]],
    ['quoted (UTF-8) names', '{"a.metric", "a.label"="v"} or b{c!="d"}', [{ name: 'a.metric', labels: ['a.label'] }, { name: 'b', labels: ['c'] }]],
    ['a subquery and a function named like a metric', 'max_over_time(rate(x_total[1m])[5m:30s]) * on () group_left scalar(time())', [{ name: 'x_total', labels: [] }]],
    ['aggregations written without a space or with a parameter', 'sum(max by (kind)(q)) + topk(3, count_values("v", w)) + quantile without (gpu) (0.9, z)', [{ name: 'q', labels: [] }, { name: 'w', labels: [] }, { name: 'z', labels: [] }]],
  ])('finds the selectors of %s', (_what, expr, expected) => {
    expect(selectorsIn(expr)).toEqual(expected);
  });

  it('refuses an expression that is not PromQL, saying where', () => {
    expect(() => selectorsIn('sum(rate(x_total[5m])')).toThrow(PromqlSyntaxError);
    expect(() => selectorsIn('sum by kind (x)')).toThrow(/not valid PromQL at offset/);
  });

  it('flags an unknown metric and an unknown label', () => {
    expect(seriesProblems('sum by (kind) (rate(mmgrid_tasks_finishd_total[5m]))', known)).toEqual(['mmgrid_tasks_finishd_total is not a known metric']);
    expect(seriesProblems('mmgrid_queue_tasks{kidn="x"}', known)).toEqual([expect.stringMatching(/^mmgrid_queue_tasks has no label kidn/)]);
  });
});
