import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { ALL_METRICS, parseYamlSource } from '@mmgrid/core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DASHBOARDS_DIR = path.join(REPO_ROOT, 'deploy/grafana/dashboards');
export const PROMETHEUS_DIR = path.join(REPO_ROOT, 'deploy/prometheus');

/** A PromQL expression and where it is written, for messages. */
export interface PlacedExpr {
  readonly where: string;
  readonly expr: string;
}

interface DashboardJson {
  readonly uid: string;
  readonly templating: { readonly list: readonly { readonly name: string; readonly query: string; readonly datasource: { readonly uid: string } }[] };
  readonly panels: readonly {
    readonly title: string;
    readonly type: string;
    readonly datasource?: { readonly uid: string };
    readonly targets?: readonly { readonly expr: string; readonly legendFormat: string; readonly datasource: { readonly uid: string } }[];
  }[];
}

/** The generated dashboards (deploy/grafana/dashboards/*.json), by file name. */
export async function readDashboards(): Promise<Map<string, DashboardJson>> {
  const files = (await readdir(DASHBOARDS_DIR)).filter((f) => f.endsWith('.json')).sort();
  const out = new Map<string, DashboardJson>();
  for (const f of files) out.set(f, JSON.parse(await readFile(path.join(DASHBOARDS_DIR, f), 'utf8')) as DashboardJson);
  return out;
}

/** Every panel query of the dashboards, with its Grafana variables as written (`$kind`, `$__rate_interval`). */
export async function dashboardQueries(): Promise<PlacedExpr[]> {
  const out: PlacedExpr[] = [];
  for (const [file, d] of await readDashboards()) {
    for (const p of d.panels) for (const t of p.targets ?? []) out.push({ where: `${file} "${p.title}"`, expr: t.expr });
  }
  return out;
}

/** Every template variable's query (`label_values(series, label)`). */
export async function variableQueries(): Promise<PlacedExpr[]> {
  const out: PlacedExpr[] = [];
  for (const [file, d] of await readDashboards()) for (const v of d.templating.list) out.push({ where: `${file} $${v.name}`, expr: v.query });
  return out;
}

/** Every rule's expression in deploy/prometheus/alerts.yml. */
export async function alertExprs(): Promise<PlacedExpr[]> {
  const file = path.join(PROMETHEUS_DIR, 'alerts.yml');
  const { value } = parseYamlSource(await readFile(file, 'utf8'), file);
  const groups = (value as { groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] }).groups;
  return groups.flatMap((g) => g.rules.map((r) => ({ where: `alerts.yml ${r.alert ?? r.record ?? '?'}`, expr: r.expr })));
}

/**
 * An expression Prometheus can run as it is: Grafana's variables replaced, every `$name` by a
 * regex that matches anything (the dashboards match them with `=~`) unless `values` gives one.
 */
export function concreteExpr(expr: string, values: Readonly<Record<string, string>> = {}): string {
  const builtins: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '5m', ...values };
  return expr.replace(/\$(\w+)/g, (_, name: string) => builtins[name] ?? '.*');
}

/** A series selector found in an expression: the metric name and the labels its matchers name. */
export interface SelectorUse {
  readonly name: string;
  readonly labels: readonly string[];
}

/** An expression PromQL's grammar does not accept, with where the parser gave up. */
export class PromqlSyntaxError extends Error {
  constructor(
    readonly expr: string,
    readonly offset: number,
  ) {
    super(`not valid PromQL at offset ${offset}: ${expr.slice(0, offset)} ⚠ ${expr.slice(offset)}`);
    this.name = 'PromqlSyntaxError';
  }
}

/** The text of a PromQL string literal ("…", '…' or `…`), as a quoted metric or label name is written. */
function stringValue(literal: string): string {
  const body = literal.slice(1, -1);
  if (literal.startsWith('`')) return body;
  // Go's escapes; JSON reads the ones a name may need (\\, \", \uXXXX).
  try {
    return JSON.parse(`"${body.replace(/\\'/g, "'")}"`) as string;
  } catch {
    return body;
  }
}

/**
 * The selectors of a PromQL expression, read by Prometheus' own grammar (@prometheus-io/lezer-promql,
 * the parser of Prometheus' web UI): the metric name of every vector selector (inside a range
 * selector or not) and the label names of its matchers. Function and aggregation names, `by (…)`
 * and `on (…)` lists are not selectors. Grafana's variables are replaced first (concreteExpr).
 * A selector without a name (`{__name__=…}`) comes back with the name "". Throws a
 * PromqlSyntaxError for an expression that does not parse.
 */
export function selectorsIn(expr: string): SelectorUse[] {
  const text = concreteExpr(expr);
  const tree = promqlParser.parse(text);
  const out: SelectorUse[] = [];
  let error: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        error ??= node.from;
        return false;
      }
      if (node.name !== 'VectorSelector') return undefined;
      let name = '';
      const labels: string[] = [];
      const matchers = node.node.getChild('LabelMatchers');
      const identifier = node.node.getChild('Identifier');
      if (identifier) name = text.slice(identifier.from, identifier.to);
      for (let m = matchers?.firstChild ?? null; m; m = m.nextSibling) {
        if (m.name === 'QuotedLabelName') {
          // A lone quoted name in the braces is the metric's name ({"my.metric"}).
          name = stringValue(text.slice(m.from, m.to));
        } else if (m.name === 'UnquotedLabelMatcher') {
          const label = m.getChild('LabelName');
          if (label) labels.push(text.slice(label.from, label.to));
        } else if (m.name === 'QuotedLabelMatcher') {
          const label = m.getChild('QuotedLabelName');
          if (label) labels.push(stringValue(text.slice(label.from, label.to)));
        }
      }
      out.push({ name, labels });
      return false;
    },
  });
  if (error !== undefined) throw new PromqlSyntaxError(text, error);
  return out;
}

/** `label_values(series{…}, label)` → the series and the label; undefined for another query. */
export function labelValuesQuery(query: string): { selector: string; label: string } | undefined {
  const m = /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(query.trim());
  return m ? { selector: m[1] ?? '', label: m[2] ?? '' } : undefined;
}

interface PromClientJson {
  readonly name: string;
  readonly type: string;
  readonly values: readonly { readonly labels: Readonly<Record<string, string | number>> }[];
}

interface PromClient {
  Registry: new () => { getMetricsAsJSON(): Promise<PromClientJson[]> };
  collectDefaultMetrics(options: { register: unknown }): void;
}

/** The labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = ['job', 'instance'];

/**
 * Every series name mmgrid's processes export, with the labels each may have: the catalog
 * (histograms as their `_bucket`, `_sum` and `_count` series), Node's default process metrics as
 * the prom-client the coordinator uses exports them, and Prometheus' `up`.
 */
export async function knownSeries(): Promise<Map<string, readonly string[]>> {
  const known = new Map<string, readonly string[]>();
  const add = (name: string, type: string, labels: readonly string[]): void => {
    const all = [...labels, ...TARGET_LABELS];
    if (type === 'histogram') {
      known.set(`${name}_bucket`, [...all, 'le']);
      known.set(`${name}_sum`, all);
      known.set(`${name}_count`, all);
    } else {
      known.set(name, all);
    }
  };
  for (const m of ALL_METRICS) add(m.name, m.type, m.labels);
  // prom-client is the coordinator's and the worker's dependency, not the tests': resolve it as the
  // coordinator does.
  const require = createRequire(path.join(REPO_ROOT, 'packages/coordinator/package.json'));
  const promClient = require('prom-client') as PromClient;
  const registry = new promClient.Registry();
  promClient.collectDefaultMetrics({ register: registry });
  for (const m of await registry.getMetricsAsJSON()) {
    const labels = new Set(m.values.flatMap((v) => Object.keys(v.labels)));
    labels.delete('le');
    add(m.name, m.type, [...labels]);
  }
  add('up', 'gauge', []);
  return known;
}

/** What is wrong with the series an expression names (none: an empty list): unknown metrics, or labels they do not have. */
export function seriesProblems(expr: string, known: ReadonlyMap<string, readonly string[]>): string[] {
  const problems: string[] = [];
  for (const s of selectorsIn(expr)) {
    const labels = known.get(s.name);
    if (labels === undefined) {
      problems.push(s.name === '' ? 'a selector without a metric name' : `${s.name} is not a known metric`);
      continue;
    }
    for (const l of s.labels) if (!labels.includes(l)) problems.push(`${s.name} has no label ${l} (it has ${labels.join(', ')})`);
  }
  return problems;
}
