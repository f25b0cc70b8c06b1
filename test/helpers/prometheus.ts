import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '@mmgrid/cli';
import { removeDir, tempDir } from './files.js';

export const PROMETHEUS_INSTALL_HINT = 'prometheus is not installed. Install it with: sudo apt-get install -y prometheus (or run scripts/install.sh)';

export interface LocalPrometheusOptions {
  /** Scrape jobs: job name → `host:port` targets, scraped at `/metrics`. */
  readonly scrape: Readonly<Record<string, readonly string[]>>;
  /** @default 1000 */
  readonly scrapeIntervalMs?: number;
  /** Rule files to load (absolute paths), evaluated every scrape interval. @default none */
  readonly ruleFiles?: readonly string[];
  /** @default "prometheus" from PATH */
  readonly command?: string;
}

/** One series of an instant query's answer. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A scrape target, as `/api/v1/targets` reports it. */
export interface PromTarget {
  readonly job: string;
  readonly instance: string;
  readonly health: 'up' | 'down' | 'unknown';
  readonly lastError: string;
}

/** A query Prometheus refused (bad syntax, a type error in the expression). */
export class PrometheusQueryError extends Error {
  constructor(
    readonly expr: string,
    readonly errorType: string,
    readonly reason: string,
  ) {
    super(`Prometheus refused ${expr}: ${errorType}: ${reason}`);
    this.name = 'PrometheusQueryError';
  }
}

/** A loaded recording or alerting rule, as `/api/v1/rules` reports it. */
export interface PromRule {
  readonly name: string;
  readonly query: string;
  /** "ok" once it evaluated without error, "err" when it failed, "unknown" before its first evaluation. */
  readonly health: 'ok' | 'err' | 'unknown';
  readonly lastError: string;
}

/** A private Prometheus for one test file, storing in a temporary folder. */
export interface LocalPrometheus {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, as a scrape target. */
  readonly address: string;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Evaluates an instant query now; a scalar answers as one sample without labels. */
  query(expr: string): Promise<PromSample[]>;
  /**
   * The values a label has on the series `match` selects, as Grafana's `label_values(match,
   * label)` asks for them (`/api/v1/label/<label>/values?match[]=…`).
   */
  labelValues(label: string, match: string): Promise<string[]>;
  /** The scrape targets and their health. */
  targets(): Promise<PromTarget[]>;
  /** The rules of `ruleFiles`, with how their last evaluation went. */
  rules(): Promise<PromRule[]>;
  /** Resolves once every target has been scraped successfully. */
  waitUntilScraped(timeoutMs?: number): Promise<void>;
  /** Stops it (SIGTERM), waits until it has exited and deletes its folder. */
  stop(): Promise<void>;
}

function configText(options: LocalPrometheusOptions): string {
  const interval = `${options.scrapeIntervalMs ?? 1000}ms`;
  const lines = ['global:', `  scrape_interval: ${interval}`, `  evaluation_interval: ${interval}`];
  if (options.ruleFiles && options.ruleFiles.length > 0) lines.push('rule_files:', ...options.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`));
  lines.push('scrape_configs:');
  for (const [job, targets] of Object.entries(options.scrape)) {
    lines.push(`  - job_name: ${JSON.stringify(job)}`, '    static_configs:', `      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]`);
  }
  if (Object.keys(options.scrape).length === 0) lines.push('  []');
  return `${lines.join('\n')}\n`;
}

interface ApiAnswer<T> {
  readonly status: 'success' | 'error';
  readonly data?: T;
  readonly errorType?: string;
  readonly error?: string;
}

type QueryData =
  | { readonly resultType: 'vector'; readonly result: readonly { readonly metric: Record<string, string>; readonly value: readonly [number, string] }[] }
  | { readonly resultType: 'scalar' | 'string'; readonly result: readonly [number, string] }
  | { readonly resultType: 'matrix'; readonly result: readonly unknown[] };

/**
 * Starts the `prometheus` binary on a free port of 127.0.0.1 with a generated config that scrapes
 * `options.scrape`, its storage in a new temporary folder, and resolves once it is ready.
 */
export async function startPrometheus(options: LocalPrometheusOptions): Promise<LocalPrometheus> {
  const dir = await tempDir('mmgrid-prometheus-');
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(configFile, configText(options));
  await mkdir(path.join(dir, 'data'));
  let lastError: unknown;
  // Another process may take the free port before Prometheus binds it: try another.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const prometheus = await launch(options, dir, configFile, await freePort());
      return {
        ...prometheus,
        stop: async () => {
          await prometheus.stop();
          await removeDir(dir);
        },
      };
    } catch (err) {
      lastError = err;
      if (err instanceof Error && err.message === PROMETHEUS_INSTALL_HINT) break;
    }
  }
  await removeDir(dir);
  throw lastError;
}

async function launch(options: LocalPrometheusOptions, dir: string, configFile: string, port: number): Promise<LocalPrometheus> {
  const address = `127.0.0.1:${port}`;
  const url = `http://${address}`;
  const child = spawn(
    options.command ?? 'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=${address}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };

  // Ready when /-/ready answers 200; refused if it exits first (port taken, bad config).
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      child.off('exit', onExit);
      child.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onExit = (code: number | null): void => finish(new Error(`prometheus exited (code ${code}) before it was ready: ${output.trim().split('\n').slice(-3).join(' | ')}`));
    const onError = (err: NodeJS.ErrnoException): void => finish(err.code === 'ENOENT' ? new Error(PROMETHEUS_INSTALL_HINT) : err);
    child.on('exit', onExit);
    child.on('error', onError);
    const deadline = Date.now() + 30_000;
    const poll = async (): Promise<void> => {
      while (!done) {
        const ready = await fetch(`${url}/-/ready`).then(
          (res) => res.ok,
          () => false,
        );
        if (ready) return finish();
        if (Date.now() > deadline) {
          await stop();
          return finish(new Error(`prometheus was not ready within 30 s: ${output.trim().split('\n').slice(-3).join(' | ')}`));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    void poll();
  });

  async function api<T>(pathAndQuery: string, what: string): Promise<T> {
    const res = await fetch(`${url}${pathAndQuery}`);
    const answer = (await res.json()) as ApiAnswer<T>;
    if (answer.status !== 'success' || answer.data === undefined) throw new PrometheusQueryError(what, answer.errorType ?? `HTTP ${res.status}`, answer.error ?? 'no data');
    return answer.data;
  }

  const targets = async (): Promise<PromTarget[]> => {
    const data = await api<{ activeTargets: { labels: Record<string, string>; health: PromTarget['health']; lastError: string }[] }>('/api/v1/targets?state=active', 'targets');
    return data.activeTargets.map((t) => ({ job: t.labels.job ?? '', instance: t.labels.instance ?? '', health: t.health, lastError: t.lastError }));
  };

  return {
    url,
    address,
    dir,
    process: child,
    async query(expr) {
      const data = await api<QueryData>(`/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`, expr);
      switch (data.resultType) {
        case 'vector':
          return data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
        case 'scalar':
        case 'string':
          return [{ metric: {}, value: Number(data.result[1]) }];
        case 'matrix':
          throw new PrometheusQueryError(expr, 'matrix', 'a range vector answers no instant query: wrap it in a function');
      }
    },
    labelValues(label, match) {
      return api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values?${new URLSearchParams({ 'match[]': match }).toString()}`, `label_values(${match}, ${label})`);
    },
    targets,
    async rules() {
      const data = await api<{ groups: { rules: { name: string; query: string; health: PromRule['health']; lastError?: string }[] }[] }>('/api/v1/rules', 'rules');
      return data.groups.flatMap((g) => g.rules.map((r) => ({ name: r.name, query: r.query, health: r.health, lastError: r.lastError ?? '' })));
    },
    async waitUntilScraped(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await targets();
        if (all.length > 0 && all.every((t) => t.health === 'up')) return;
        if (Date.now() > deadline) {
          const bad = all.filter((t) => t.health !== 'up').map((t) => `${t.job} ${t.instance}: ${t.health} ${t.lastError}`);
          throw new Error(`targets not scraped within ${timeoutMs} ms: ${bad.join('; ') || 'no targets'}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop,
  };
}
