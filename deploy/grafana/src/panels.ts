/**
 * Builders for dashboards, rows, panels, queries and template variables, producing the JSON
 * model of grafana-model.ts. Panels are laid out left to right in 24 columns, row after row, so
 * a dashboard states only widths and heights.
 *
 *   dashboard({ uid: 'mmgrid-x', title: 'X', description: '…', variables: [kind], rows: [
 *     row('Tasks', [timeseries({ title: 'Retries', unit: 'ops', queries: [q(retries, '{{kind}}')] })]),
 *   ] });
 */
import { DATASOURCE } from './catalog.js';
import type {
  BarGaugePanel,
  Color,
  Dashboard,
  FieldConfig,
  FieldOverride,
  GridPos,
  HeatmapPanel,
  Panel,
  QueryPanel,
  QueryVariable,
  ReduceOptions,
  StatPanel,
  TablePanel,
  Target,
  Thresholds,
  TimeseriesPanel,
  Unit,
} from './grafana-model.js';
import type { Vector } from './promql.js';

const COLUMNS = 24;

// ---------------------------------------------------------------------------------------------
// Queries

/** The first `{{label}}` in a legend that is not one of `L` (never when all are). */
type LegendProblem<S extends string, L extends string> = S extends `${string}{{${infer X}}}${infer Rest}` ? (X extends L ? LegendProblem<Rest, L> : X) : never;

/** The legend itself when every `{{label}}` in it is a label of the query, else a type that names the one that is not. */
export type CheckedLegend<S extends string, L extends string> = [LegendProblem<S, L>] extends [never] ? S : `legend names {{${LegendProblem<S, L>}}}, which this query has no label for`;

/** A query of a panel, with the legend Grafana shows for its series. */
export interface Query {
  readonly expr: string;
  readonly legend: string;
}

/** A query and its legend; `{{label}}` in the legend must name one of the query's labels. */
export function q<L extends string, const S extends string>(v: Vector<L>, legend: CheckedLegend<S, L>): Query {
  return { expr: v.promql, legend };
}

function targets(queries: readonly Query[], kind: 'range' | 'instant' | 'heatmap'): Target[] {
  return queries.map((query, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: DATASOURCE,
    expr: query.expr,
    legendFormat: query.legend,
    range: kind !== 'instant',
    instant: kind === 'instant',
    ...(kind === 'instant' ? { format: 'table' as const } : kind === 'heatmap' ? { format: 'heatmap' as const } : {}),
  }));
}

// ---------------------------------------------------------------------------------------------
// Variables

/** A template variable; `re` is the matcher for a multi-value variable (`label=~"$name"`). */
export interface Variable<N extends string> {
  readonly name: N;
  readonly ref: `$${N}`;
  readonly re: { readonly re: `$${N}` };
  readonly model: QueryVariable;
}

/** A multi-value variable (All selected at first) whose values come from `label_values(…)`. */
export function variable<const N extends string>(name: N, label: string, query: string): Variable<N> {
  return {
    name,
    ref: `$${name}`,
    re: { re: `$${name}` },
    model: {
      type: 'query',
      name,
      label,
      datasource: DATASOURCE,
      query,
      definition: query,
      refresh: 2,
      multi: true,
      includeAll: true,
      allValue: '.*',
      current: { text: 'All', value: ['$__all'] },
      sort: 1,
      hide: 0,
      regex: '',
      options: [],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Panels

/** Thresholds from a base colour and the values at which the colour changes. */
export interface ThresholdSpec {
  readonly base: Color;
  readonly steps?: readonly (readonly [value: number, color: Color])[];
}

interface PanelOptions {
  readonly title: string;
  readonly description?: string;
  /** Columns of 24. @default 12 */
  readonly width?: number;
  /** Grid units of 30 px. @default 8 */
  readonly height?: number;
  readonly unit?: Unit;
  readonly min?: number;
  readonly max?: number;
  readonly decimals?: number;
  readonly thresholds?: ThresholdSpec;
  /** One copy of the panel per selected value of this variable, side by side (queries name it as usual). */
  readonly repeat?: Variable<string>;
}

/** A panel before layout: its size, and how to build it once its id and place are known. */
export interface PanelDraft {
  readonly width: number;
  readonly height: number;
  build(id: number, gridPos: GridPos): QueryPanel;
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function thresholds(spec: ThresholdSpec | undefined): Thresholds {
  const base = spec?.base ?? 'green';
  return { mode: 'absolute', steps: [{ color: base, value: null }, ...(spec?.steps ?? []).map(([value, color]) => ({ color, value }))] };
}

function fieldConfig(o: PanelOptions, custom: Readonly<Record<string, unknown>> | undefined, overrides: readonly FieldOverride[], colorMode: 'palette-classic' | 'thresholds'): FieldConfig {
  return {
    defaults: {
      ...opt('unit', o.unit),
      ...opt('min', o.min),
      ...opt('max', o.max),
      ...opt('decimals', o.decimals),
      color: { mode: colorMode },
      thresholds: thresholds(o.thresholds),
      ...opt('custom', custom),
    },
    overrides,
  };
}

function base(o: PanelOptions, id: number, gridPos: GridPos): Pick<QueryPanel, 'id' | 'title' | 'description' | 'gridPos' | 'repeat' | 'repeatDirection' | 'maxPerRow'> {
  const repeat = o.repeat === undefined ? {} : { repeat: o.repeat.name, repeatDirection: 'h' as const, maxPerRow: Math.floor(COLUMNS / gridPos.w) };
  return { id, title: o.title, ...opt('description', o.description), ...repeat, gridPos };
}

function draft(o: PanelOptions, defaultWidth: number, defaultHeight: number, build: (id: number, gridPos: GridPos) => QueryPanel): PanelDraft {
  const width = o.width ?? defaultWidth;
  if (!Number.isInteger(width) || width < 1 || width > COLUMNS) throw new RangeError(`panel "${o.title}": width is ${width}, not 1 to ${COLUMNS}`);
  return { width, height: o.height ?? defaultHeight, build };
}

function colorOverrides(colors: Readonly<Record<string, Color>> | undefined): FieldOverride[] {
  return Object.entries(colors ?? {}).map(([name, color]) => ({
    matcher: { id: 'byName', options: name },
    properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
  }));
}

const LAST: ReduceOptions = { calcs: ['lastNotNull'], fields: '', values: false };

export interface TimeseriesOptions extends PanelOptions {
  readonly queries: readonly Query[];
  /** Stack the series (parts of a whole: workers by GPU model). @default false */
  readonly stack?: boolean;
  /** Fixed colours for series, by their legend ("failed": "red"). */
  readonly colors?: Readonly<Record<string, Color>>;
  /** Draw the thresholds as lines. @default false */
  readonly thresholdLines?: boolean;
  /** A table legend with these values (mean, max, lastNotNull); a plain list when empty. */
  readonly legendCalcs?: readonly ('mean' | 'max' | 'lastNotNull')[];
}

/** Series over time. */
export function timeseries(o: TimeseriesOptions): PanelDraft {
  return draft(o, 12, 8, (id, gridPos): TimeseriesPanel => ({
    ...base(o, id, gridPos),
    type: 'timeseries',
    datasource: DATASOURCE,
    targets: targets(o.queries, 'range'),
    fieldConfig: fieldConfig(
      o,
      {
        drawStyle: 'line',
        lineWidth: 1,
        fillOpacity: o.stack === true ? 30 : 10,
        showPoints: 'never',
        spanNulls: false,
        stacking: { mode: o.stack === true ? 'normal' : 'none', group: 'A' },
        thresholdsStyle: { mode: o.thresholdLines === true ? 'line' : 'off' },
      },
      colorOverrides(o.colors),
      'palette-classic',
    ),
    options: {
      legend: { displayMode: (o.legendCalcs ?? []).length > 0 ? 'table' : 'list', placement: 'bottom', showLegend: true, calcs: o.legendCalcs ?? [] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  }));
}

export interface StatOptions extends PanelOptions {
  readonly queries: readonly Query[];
  /** Colour the background by the thresholds rather than the number. @default false */
  readonly background?: boolean;
}

/** One number (the latest value), with a sparkline. */
export function stat(o: StatOptions): PanelDraft {
  return draft(o, 4, 4, (id, gridPos): StatPanel => ({
    ...base(o, id, gridPos),
    type: 'stat',
    datasource: DATASOURCE,
    targets: targets(o.queries, 'range'),
    fieldConfig: fieldConfig(o, undefined, [], 'thresholds'),
    options: { reduceOptions: LAST, colorMode: o.background === true ? 'background' : 'value', graphMode: 'area', justifyMode: 'auto', orientation: 'auto', textMode: 'auto' },
  }));
}

export interface BarGaugeOptions extends PanelOptions {
  /** Instant queries, one bar per series. */
  readonly queries: readonly Query[];
}

/** One bar per series, at the end of the time range. */
export function bargauge(o: BarGaugeOptions): PanelDraft {
  return draft(o, 12, 8, (id, gridPos): BarGaugePanel => ({
    ...base(o, id, gridPos),
    type: 'bargauge',
    datasource: DATASOURCE,
    targets: targets(o.queries, 'instant'),
    fieldConfig: fieldConfig(o, undefined, [], 'thresholds'),
    options: { reduceOptions: LAST, displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true },
  }));
}

/** A column of a table: an instant query, its title and unit. */
export interface TableColumn<L extends string> {
  readonly title: string;
  readonly value: Vector<L>;
  /** @default the table's unit */
  readonly unit?: Unit;
}

export interface TableOptions<L extends string> extends PanelOptions {
  /** Instant queries with the same labels, one column each. */
  readonly columns: readonly TableColumn<L>[];
  /** The label the rows are keyed by, shown first. */
  readonly rowsBy: NoInfer<L>;
  /** Sort by the column with this title, highest first. */
  readonly sortBy: string;
}

/**
 * A table of instant values, one row per value of `rowsBy`, one column per query.
 *
 * @throws RangeError when `sortBy` is not the title of a column.
 */
export function table<L extends string>(o: TableOptions<L>): PanelDraft {
  const titles = o.columns.map((c) => c.title);
  if (!titles.includes(o.sortBy)) throw new RangeError(`table "${o.title}": sortBy "${o.sortBy}" is not one of its columns (${titles.join(', ')})`);
  const ts = targets(
    o.columns.map((c) => ({ expr: c.value.promql, legend: '' })),
    'instant',
  );
  const unitOverrides: FieldOverride[] = o.columns.flatMap((c) =>
    c.unit === undefined ? [] : [{ matcher: { id: 'byName' as const, options: c.title }, properties: [{ id: 'unit', value: c.unit }] }],
  );
  return draft(o, 12, 8, (id, gridPos): TablePanel => ({
    ...base(o, id, gridPos),
    type: 'table',
    datasource: DATASOURCE,
    targets: ts,
    // Instant table queries give one frame per query ("Value #A"…): merge them on the labels,
    // drop what is neither the key nor a value, and name the value columns.
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          indexByName: Object.fromEntries([[o.rowsBy, 0], ...titles.map((t, i) => [t, i + 1])]),
          renameByName: Object.fromEntries(ts.map((t, i) => [`Value #${t.refId}`, titles[i]])),
        },
      },
    ],
    fieldConfig: fieldConfig(o, { align: 'auto', cellOptions: { type: 'auto' } }, unitOverrides, 'thresholds'),
    options: { showHeader: true, sortBy: [{ displayName: o.sortBy, desc: true }] },
  }));
}

export interface HeatmapOptions<L extends string> extends Omit<PanelOptions, 'unit' | 'thresholds'> {
  /** Rates (or increases) of a histogram's buckets, summed by `le`. */
  readonly buckets: Vector<L | 'le', 'bucketRate'>;
  /** The unit of the histogram's buckets (the y axis). */
  readonly unit?: Unit;
}

/** A histogram over time: one row per bucket. */
export function heatmap<L extends string>(o: HeatmapOptions<L>): PanelDraft {
  return draft(o, 12, 8, (id, gridPos): HeatmapPanel => ({
    ...base(o, id, gridPos),
    type: 'heatmap',
    datasource: DATASOURCE,
    targets: targets([{ expr: o.buckets.promql, legend: '{{le}}' }], 'heatmap'),
    fieldConfig: { defaults: {}, overrides: [] },
    options: {
      calculate: false,
      cellGap: 1,
      color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
      yAxis: { axisPlacement: 'left', ...opt('unit', o.unit) },
      rowsFrame: { layout: 'le' },
      tooltip: { mode: 'single', yHistogram: true },
    },
  }));
}

// ---------------------------------------------------------------------------------------------
// Dashboards

export interface Row {
  readonly title: string;
  readonly panels: readonly PanelDraft[];
}

export function row(title: string, panels: readonly PanelDraft[]): Row {
  return { title, panels };
}

export interface DashboardOptions {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly Variable<string>[];
  readonly rows: readonly Row[];
}

/** Tag shared by the mmgrid dashboards: each links to the others through it. */
const TAG = 'mmgrid';

/** `$name`, `${name}`, `${name:fmt}` and `[[name]]`, less Grafana's own `$__…`. */
function variablesIn(text: string): string[] {
  return [...text.matchAll(/\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '').filter((name) => !name.startsWith('__'));
}

/**
 * Lays the rows out and checks what the types cannot: every variable a query names is defined
 * (and, for a variable's own query, defined before it).
 *
 * @throws Error naming the panel or variable that refers to an undefined variable.
 */
export function dashboard(o: DashboardOptions): Dashboard {
  const defined = new Set<string>();
  for (const v of o.variables) {
    const unknown = variablesIn(v.model.query).filter((name) => !defined.has(name));
    if (unknown.length > 0) throw new Error(`${o.uid}: variable ${v.name} uses $${unknown.join(', $')}, not defined before it`);
    if (defined.has(v.name)) throw new Error(`${o.uid}: variable ${v.name} is defined twice`);
    defined.add(v.name);
  }

  const panels: Panel[] = [];
  let id = 1;
  let y = 0;
  for (const r of o.rows) {
    panels.push({ id: id++, type: 'row', title: r.title, collapsed: false, panels: [], gridPos: { x: 0, y, w: COLUMNS, h: 1 } });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const p of r.panels) {
      if (x + p.width > COLUMNS) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      const panel = p.build(id++, { x, y, w: p.width, h: p.height });
      if (panel.repeat !== undefined && !defined.has(panel.repeat)) throw new Error(`${o.uid}: panel "${panel.title}" repeats by $${panel.repeat}, which the dashboard does not define`);
      for (const t of panel.targets) {
        const unknown = variablesIn(t.expr).filter((name) => !defined.has(name));
        if (unknown.length > 0) throw new Error(`${o.uid}: panel "${panel.title}" uses $${unknown.join(', $')}, which the dashboard does not define`);
      }
      panels.push(panel);
      x += p.width;
      lineHeight = Math.max(lineHeight, p.height);
    }
    y += lineHeight;
  }

  return {
    id: null,
    uid: o.uid,
    title: o.title,
    description: o.description,
    tags: [TAG],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    time: { from: 'now-3h', to: 'now' },
    schemaVersion: 39,
    version: 1,
    links: [{ type: 'dashboards', title: 'mmgrid', tags: [TAG], asDropdown: true, includeVars: false, keepTime: true }],
    templating: { list: o.variables.map((v) => v.model) },
    annotations: { list: [] },
    panels,
  };
}
