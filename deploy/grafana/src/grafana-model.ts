/**
 * The part of Grafana's dashboard JSON model (schemaVersion 39, Grafana 10 and 11) that the
 * mmgrid dashboards use. Field names and values are Grafana's; see
 * https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/
 */

export interface DataSourceRef {
  readonly type: 'prometheus';
  readonly uid: string;
}

export interface GridPos {
  readonly x: number;
  readonly y: number;
  /** Of 24 columns. */
  readonly w: number;
  readonly h: number;
}

/** Grafana's unit ids used here, or a custom suffix ("suffix: jobs/s"). */
export type Unit =
  | 'short'
  | 'none'
  | 's'
  | 'bytes'
  | 'percentunit'
  | 'celsius'
  | 'watt'
  | 'ops'
  | `suffix: ${string}`;

/** Grafana's named colours, or a hex colour. */
export type Color = 'green' | 'yellow' | 'orange' | 'red' | 'blue' | 'purple' | 'text' | 'transparent' | `#${string}`;

export interface ThresholdStep {
  readonly color: Color;
  /** null for the base step (everything below the first value). */
  readonly value: number | null;
}

export interface Thresholds {
  readonly mode: 'absolute' | 'percentage';
  readonly steps: readonly ThresholdStep[];
}

export interface FieldDefaults {
  readonly unit?: Unit;
  readonly min?: number;
  readonly max?: number;
  readonly decimals?: number;
  readonly color?: { readonly mode: 'palette-classic' | 'thresholds' | 'continuous-GrYlRd' | 'fixed'; readonly fixedColor?: Color };
  readonly thresholds?: Thresholds;
  readonly custom?: Readonly<Record<string, unknown>>;
}

export interface FieldOverride {
  readonly matcher: { readonly id: 'byName' | 'byRegexp'; readonly options: string };
  readonly properties: readonly { readonly id: string; readonly value: unknown }[];
}

export interface FieldConfig {
  readonly defaults: FieldDefaults;
  readonly overrides: readonly FieldOverride[];
}

export interface Target {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly legendFormat: string;
  readonly range: boolean;
  readonly instant: boolean;
  readonly format?: 'time_series' | 'table' | 'heatmap';
  readonly interval?: string;
}

interface PanelBase {
  readonly id: number;
  readonly title: string;
  readonly description?: string;
  readonly gridPos: GridPos;
}

export interface RowPanel extends PanelBase {
  readonly type: 'row';
  readonly collapsed: boolean;
  readonly panels: readonly [];
}

interface QueryPanelBase extends PanelBase {
  /** One copy of the panel per selected value of this variable. */
  readonly repeat?: string;
  readonly repeatDirection?: 'h' | 'v';
  readonly maxPerRow?: number;
  readonly datasource: DataSourceRef;
  readonly targets: readonly Target[];
  readonly fieldConfig: FieldConfig;
  readonly transformations?: readonly { readonly id: string; readonly options: Readonly<Record<string, unknown>> }[];
}

export interface ReduceOptions {
  readonly calcs: readonly ('lastNotNull' | 'mean' | 'max' | 'min' | 'sum')[];
  readonly fields: string;
  readonly values: boolean;
}

export interface TimeseriesPanel extends QueryPanelBase {
  readonly type: 'timeseries';
  readonly options: {
    readonly legend: { readonly displayMode: 'list' | 'table' | 'hidden'; readonly placement: 'bottom' | 'right'; readonly showLegend: boolean; readonly calcs: readonly string[] };
    readonly tooltip: { readonly mode: 'single' | 'multi'; readonly sort: 'none' | 'asc' | 'desc' };
  };
}

export interface StatPanel extends QueryPanelBase {
  readonly type: 'stat';
  readonly options: {
    readonly reduceOptions: ReduceOptions;
    readonly colorMode: 'value' | 'background' | 'none';
    readonly graphMode: 'area' | 'none';
    readonly justifyMode: 'auto' | 'center';
    readonly orientation: 'auto' | 'horizontal' | 'vertical';
    readonly textMode: 'auto' | 'value' | 'value_and_name';
  };
}

export interface BarGaugePanel extends QueryPanelBase {
  readonly type: 'bargauge';
  readonly options: {
    readonly reduceOptions: ReduceOptions;
    readonly displayMode: 'gradient' | 'lcd' | 'basic';
    readonly orientation: 'horizontal' | 'vertical';
    readonly showUnfilled: boolean;
  };
}

export interface TablePanel extends QueryPanelBase {
  readonly type: 'table';
  readonly options: {
    readonly showHeader: boolean;
    readonly sortBy: readonly { readonly displayName: string; readonly desc: boolean }[];
  };
}

export interface HeatmapPanel extends QueryPanelBase {
  readonly type: 'heatmap';
  readonly options: {
    /** false: the buckets come from the query (a Prometheus histogram), Grafana does not bucket. */
    readonly calculate: false;
    readonly cellGap: number;
    readonly color: { readonly mode: 'scheme'; readonly scheme: string; readonly steps: number };
    readonly yAxis: { readonly axisPlacement: 'left'; readonly unit?: Unit };
    readonly rowsFrame: { readonly layout: 'le' | 'ge' | 'auto' };
    readonly tooltip: { readonly mode: 'single'; readonly yHistogram: boolean };
  };
}

export type QueryPanel = TimeseriesPanel | StatPanel | BarGaugePanel | TablePanel | HeatmapPanel;
export type Panel = RowPanel | QueryPanel;

/** A variable whose values come from a query (`label_values(…)`). */
export interface QueryVariable {
  readonly type: 'query';
  readonly name: string;
  readonly label: string;
  readonly datasource: DataSourceRef;
  readonly query: string;
  readonly definition: string;
  /** 2: refresh the values when the time range changes. */
  readonly refresh: 1 | 2;
  readonly multi: boolean;
  readonly includeAll: boolean;
  readonly allValue?: string;
  readonly current: { readonly text: string; readonly value: string | readonly string[] };
  readonly sort: 0 | 1;
  readonly hide: 0 | 1 | 2;
  readonly regex: string;
  readonly options: readonly [];
}

export interface DashboardLink {
  readonly type: 'dashboards';
  readonly title: string;
  readonly tags: readonly string[];
  readonly asDropdown: boolean;
  readonly includeVars: boolean;
  readonly keepTime: boolean;
}

export interface Dashboard {
  /** null: Grafana gives the dashboard its numeric id when it provisions it. */
  readonly id: null;
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly timezone: 'browser' | 'utc';
  readonly editable: boolean;
  /** 1: a shared crosshair across panels. */
  readonly graphTooltip: 0 | 1 | 2;
  readonly refresh: string;
  readonly time: { readonly from: string; readonly to: string };
  readonly schemaVersion: 39;
  readonly version: number;
  readonly links: readonly DashboardLink[];
  readonly templating: { readonly list: readonly QueryVariable[] };
  readonly annotations: { readonly list: readonly [] };
  readonly panels: readonly Panel[];
}
