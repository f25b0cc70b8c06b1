/**
 * What every benchmark shares: the shape of a benchmark and of what it reports, the run's
 * scale, and small measuring tools (a process's memory and CPU from /proc, percentiles).
 *
 * A benchmark measures mmgrid and a baseline (the part it is built on, doing the same work)
 * in the same run, on the same machine, and reports the ratio, so a figure means the same on
 * a laptop and on a server. Targets are checked on the ratios.
 */
import { readFile } from 'node:fs/promises';

/**
 * How big a run is. `smoke`: seconds per benchmark, only to show that it still runs (its
 * figures mean nothing and its targets are not checked); `default`: what `pnpm bench` runs,
 * minutes in all; `full`: the sizes the targets are stated for, where they are larger.
 */
export type Scale = 'smoke' | 'default' | 'full';

export interface BenchContext {
  readonly scale: Scale;
  /** A line of progress, shown as the benchmark runs. */
  log(line: string): void;
}

/** One target: `value op limit`, checked unless the run is a smoke run. */
export interface Target {
  readonly what: string;
  readonly value: number;
  readonly op: '<=' | '>=';
  readonly limit: number;
  /** How to show value and limit ("×", " ms", " B"…). */
  readonly unit: string;
  readonly met: boolean;
}

/** A table of results: the first row of `rows` lines up with `columns`. */
export interface Table {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

export interface BenchResult {
  /** What was measured and what it was measured against, in a sentence each. */
  readonly method: string;
  readonly baseline: string;
  readonly table: Table;
  readonly targets: readonly Target[];
  /** Every figure, by name, for bench/results/latest.json (units in the names). */
  readonly figures: Readonly<Record<string, number | string | boolean>>;
  /** What limits a figure, where a target is missed or only just met. */
  readonly notes?: readonly string[];
}

export interface Benchmark {
  /** Short name, used to pick it: `pnpm bench throughput`. */
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}

export function target(what: string, value: number, op: '<=' | '>=', limit: number, unit = ''): Target {
  return { what, value, op, limit, unit, met: op === '<=' ? value <= limit : value >= limit };
}

/** The q-th quantile (0..1) of xs, by the nearest-rank method. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

export const median = (xs: readonly number[]): number => quantile(xs, 0.5);

/** Kernel clock ticks per second (USER_HZ), 100 on every Linux that matters. */
const CLOCK_TICKS = 100;

/** CPU time (user + system) a process has used, in ms, from /proc (Linux). */
export async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU time (user + system) this process has used, in ms. */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Resident memory of a process, in MiB, from /proc (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples a process's resident memory every `everyMs` until stopped; reports the peak. */
export function rssSampler(pid: number, everyMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  const sample = (): Promise<void> => rssMiB(pid).then((mib) => void (peak = Math.max(peak, mib)), () => undefined);
  void sample();
  const timer = setInterval(() => void sample(), everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}

/** Seconds since a `performance.now()` reading. */
export const secondsSince = (start: number): number => (performance.now() - start) / 1000;

/** Formats a number for a table: integers with thousands separators, others with `digits`. */
export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return String(x);
  return Number.isInteger(x) ? x.toLocaleString('en-US') : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
