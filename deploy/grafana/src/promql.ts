/**
 * A typed subset of PromQL: enough for the dashboards, strict enough that a typo does not compile.
 *
 *   const failed = counter(COORDINATOR_METRICS.tasksFinished, { kind: kindVar.re, outcome: 'failed' });
 *   sum(rate(failed), ['kind'])                         // sum by (kind) (rate(…[$__rate_interval]))
 *   histogramQuantile(0.99, sum(rate(buckets(COORDINATOR_METRICS.taskRun)), ['le', 'kind']))
 *
 * A vector's type carries its label names, so matchers, `by` lists and legends may only name
 * labels the metric has (the catalog's labels plus the `job` and `instance` Prometheus adds), and
 * its shape, so `rate` only takes a counter or histogram selector and `histogramQuantile` only a
 * rate of buckets that kept `le`.
 */
import type { MetricSpec } from './catalog.js';

/** Labels Prometheus adds to every series it scrapes. */
export type TargetLabel = 'job' | 'instance';

/** The label names a series of this metric has. */
export type LabelsOf<S extends MetricSpec> = S['labels'][number] | TargetLabel;

/**
 * What a vector is, for the functions that accept it: a raw counter or histogram bucket
 * selector (the only things a range may follow), a per-second rate of buckets, or any value.
 */
export type Shape = 'counter' | 'gauge' | 'buckets' | 'bucketRate' | 'value';

/** An instant vector expression with the labels `L`. */
export interface Vector<L extends string, K extends Shape = Shape> {
  readonly promql: string;
  readonly labels: readonly L[];
  readonly shape: K;
}

/** A label matcher: a string for `=`, or one of the other three operators. */
export type Matcher = string | { readonly re: string } | { readonly not: string } | { readonly notRe: string };

/** Matchers on some of the labels `L`, and only those. */
export type Matchers<L extends string> = { readonly [N in L]?: Matcher };

/** A range: Grafana's interval variables, or a literal duration. */
export type Window = '$__rate_interval' | '$__interval' | '$__range' | `${number}${'s' | 'm' | 'h' | 'd'}`;

type Spec<T extends MetricSpec['type']> = MetricSpec & { readonly type: T };

function quote(value: string): string {
  return JSON.stringify(value);
}

function matcherText(label: string, m: Matcher): string {
  if (typeof m === 'string') return `${label}=${quote(m)}`;
  if ('re' in m) return `${label}=~${quote(m.re)}`;
  if ('notRe' in m) return `${label}!~${quote(m.notRe)}`;
  return `${label}!=${quote(m.not)}`;
}

function selector(series: string, matchers: Readonly<Record<string, Matcher | undefined>> | undefined): string {
  const parts = Object.entries(matchers ?? {}).flatMap(([label, m]) => (m === undefined ? [] : [matcherText(label, m)]));
  return parts.length === 0 ? series : `${series}{${parts.join(', ')}}`;
}

function vector<L extends string, K extends Shape>(promql: string, labels: readonly L[], shape: K): Vector<L, K> {
  return { promql, labels, shape };
}

function labelsOf<S extends MetricSpec>(spec: S): LabelsOf<S>[] {
  return [...(spec.labels as readonly LabelsOf<S>[]), 'job', 'instance'];
}

/** `mmgrid_x_total{…}`: a counter, ready for `rate` or `increase`. */
export function counter<S extends Spec<'counter'>>(spec: S, matchers?: Matchers<LabelsOf<S>>): Vector<LabelsOf<S>, 'counter'> {
  return vector(selector(spec.name, matchers), labelsOf(spec), 'counter');
}

/** `mmgrid_x{…}`: a gauge's current value. */
export function gauge<S extends Spec<'gauge'>>(spec: S, matchers?: Matchers<LabelsOf<S>>): Vector<LabelsOf<S>, 'gauge'> {
  return vector(selector(spec.name, matchers), labelsOf(spec), 'gauge');
}

/** `mmgrid_x_bucket{…}`: a histogram's cumulative buckets, labelled `le`. */
export function buckets<S extends Spec<'histogram'>>(spec: S, matchers?: Matchers<LabelsOf<S>>): Vector<LabelsOf<S> | 'le', 'buckets'> {
  return vector(selector(`${spec.name}_bucket`, matchers), [...labelsOf(spec), 'le'], 'buckets');
}

/** `mmgrid_x_count{…}`: how many observations a histogram made (a counter). */
export function observations<S extends Spec<'histogram'>>(spec: S, matchers?: Matchers<LabelsOf<S>>): Vector<LabelsOf<S>, 'counter'> {
  return vector(selector(`${spec.name}_count`, matchers), labelsOf(spec), 'counter');
}

/** `mmgrid_x_sum{…}`: the sum of a histogram's observations (a counter). */
export function observedSum<S extends Spec<'histogram'>>(spec: S, matchers?: Matchers<LabelsOf<S>>): Vector<LabelsOf<S>, 'counter'> {
  return vector(selector(`${spec.name}_sum`, matchers), labelsOf(spec), 'counter');
}

type RateShape<K extends Shape> = K extends 'buckets' ? 'bucketRate' : 'value';

/** Per-second rate of a counter (or of histogram buckets, for `histogramQuantile`). */
export function rate<L extends string, K extends 'counter' | 'buckets'>(v: Vector<L, K>, window: Window = '$__rate_interval'): Vector<L, RateShape<K>> {
  return vector(`rate(${v.promql}[${window}])`, v.labels, (v.shape === 'buckets' ? 'bucketRate' : 'value') as RateShape<K>);
}

/** How much a counter (or histogram buckets) grew over the window. */
export function increase<L extends string, K extends 'counter' | 'buckets'>(v: Vector<L, K>, window: Window = '$__rate_interval'): Vector<L, RateShape<K>> {
  return vector(`increase(${v.promql}[${window}])`, v.labels, (v.shape === 'buckets' ? 'bucketRate' : 'value') as RateShape<K>);
}

/** Per-second slope of a gauge over the window. */
export function deriv<L extends string>(v: Vector<L, 'gauge'>, window: Window): Vector<L, 'value'> {
  return vector(`deriv(${v.promql}[${window}])`, v.labels, 'value');
}

/** The highest value of a gauge over the window. */
export function maxOverTime<L extends string>(v: Vector<L, 'gauge'>, window: Window): Vector<L, 'value'> {
  return vector(`max_over_time(${v.promql}[${window}])`, v.labels, 'value');
}

type Aggregated<K extends Shape, B extends string> = K extends 'bucketRate' ? ('le' extends B ? 'bucketRate' : 'value') : 'value';

function aggregation(op: string) {
  return <L extends string, K extends Shape, const B extends L = never>(v: Vector<L, K>, by: readonly B[] = []): Vector<B, Aggregated<K, B>> => {
    const grouping = by.length === 0 ? '' : ` by (${by.join(', ')}) `;
    const shape = v.shape === 'bucketRate' && (by as readonly string[]).includes('le') ? 'bucketRate' : 'value';
    return vector(`${op}${grouping}(${v.promql})`, by, shape as Aggregated<K, B>);
  };
}

/** `sum by (…) (v)`; with no labels, one series. */
export const sum = aggregation('sum');
/** `max by (…) (v)`: also how to read a gauge every coordinator replica reports alike (queue depth). */
export const max = aggregation('max');
/** `min by (…) (v)` */
export const min = aggregation('min');
/** `avg by (…) (v)` */
export const avg = aggregation('avg');
/** `count by (…) (v)`: how many series. */
export const count = aggregation('count');

/** The q-quantile (0 to 1) of a histogram, from a rate of its buckets that kept `le`. */
export function histogramQuantile<L extends string>(q: number, v: Vector<L, 'bucketRate'>): Vector<Exclude<L, 'le'>, 'value'> {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`histogramQuantile: q is ${q}, not between 0 and 1`);
  return vector(`histogram_quantile(${q}, ${v.promql})`, v.labels.filter((l): l is Exclude<L, 'le'> => l !== 'le'), 'value');
}

/** The k largest series. */
export function topk<L extends string>(k: number, v: Vector<L>): Vector<L, 'value'> {
  return vector(`topk(${k}, ${v.promql})`, v.labels, 'value');
}

function binary(op: string) {
  // The right side may carry no label the left one lacks: one-to-one matching needs the same
  // label sets, and every vector here is aggregated to the labels it keeps.
  return <L extends string>(a: Vector<L>, b: Vector<NoInfer<L>> | number): Vector<L, 'value'> =>
    vector(`(${a.promql}) ${op} ${typeof b === 'number' ? String(b) : `(${b.promql})`}`, a.labels, 'value');
}

/** `(a) / (b)` */
export const div = binary('/');
/** `(a) * (b)` */
export const mul = binary('*');
/** `(a) - (b)` */
export const sub = binary('-');
/** `(a) + (b)` */
export const add = binary('+');
/**
 * `(a) or (b)`: a's series, and b's where a has none with the same labels. With `mul(b, 0)`, a
 * zero for each group that has b but no a (pipelines that never had a partial job).
 */
export const or = binary('or');

/** `(v) or vector(0)`: zero instead of no data, for a vector without labels (a stat). */
export function orZero(v: Vector<never>): Vector<never, 'value'> {
  return vector(`(${v.promql}) or vector(0)`, [], 'value');
}

/** Grafana's `label_values(series{…}, label)`, the query of a template variable. */
export function labelValues<S extends MetricSpec>(spec: S, label: LabelsOf<S>, matchers?: Matchers<LabelsOf<S>>): string {
  const series = spec.type === 'histogram' ? `${spec.name}_count` : spec.name;
  return `label_values(${selector(series, matchers)}, ${label})`;
}
