import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { startRedisServer, type LocalRedis } from './local-redis.js';

const require = createRequire(import.meta.url);

/** The path of a sibling package's executable (the CLI launches them; it never imports them). */
export function binOf(pkg: '@mmgrid/coordinator' | '@mmgrid/worker'): string {
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin: Record<string, string> };
  const bin = Object.values(manifest.bin)[0];
  if (!bin) throw new Error(`${pkg} declares no executable`);
  return path.join(path.dirname(manifestPath), bin);
}

export interface LocalGridOptions {
  /** Folder for Redis data, blobs, worker state and logs. */
  readonly dataDir: string;
  /** Worker processes to start. @default 2 */
  readonly workers?: number;
  /** Coordinator listen address. @default "127.0.0.1:0" (a free port) */
  readonly listen?: string;
  /** Coordinator replicas, sharing the Redis and the blob folder. @default 1 */
  readonly replicas?: number;
  /** Use this Redis instead of starting a private redis-server. */
  readonly redisUrl?: string;
  /**
   * Extra arguments for the coordinator. Without a `--metrics-listen` among them, each
   * replica serves /metrics on a free local port (see LocalGrid.metricsAddresses).
   */
  readonly coordinatorArgs?: readonly string[];
  /**
   * Extra arguments for every worker. Each worker serves /metrics on a free local port (see
   * LocalGrid.workerMetricsAddresses) unless these, or addWorker's, give another `--metrics-listen`.
   */
  readonly workerArgs?: readonly string[];
  /** Where children's logs go: this terminal, or one file each under dataDir/logs. @default "files" */
  readonly logs?: 'inherit' | 'files';
  /** Extra environment for the children. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The environment variables that choose TLS or plaintext, and the TLS files, of the programs. */
const TRANSPORT_ENV = ['MMGRID_TLS', 'MMGRID_INSECURE', 'MMGRID_CA', 'MMGRID_CERT', 'MMGRID_CERT_KEY', 'MMGRID_TLS_SERVER_NAME', 'MMGRID_TLS_CERT', 'MMGRID_TLS_KEY', 'MMGRID_TLS_CLIENT_CA'] as const;

interface ChildMessage {
  readonly type?: string;
  readonly address?: string;
  /** A coordinator's or worker's /metrics address ("host:port"), when it serves one. */
  readonly metricsAddress?: string;
}

/**
 * A whole grid on this machine: a private redis-server (unless a Redis URL is given), a
 * coordinator process and worker processes, started and stopped together.
 */
export class LocalGrid {
  readonly workers: ChildProcess[] = [];
  /** Each worker's /metrics and /healthz address ("" for one that serves none), in the order of `workers`. */
  readonly workerMetricsAddresses: string[] = [];
  /** Coordinator replicas and their addresses, in the same order. */
  readonly coordinators: ChildProcess[] = [];
  readonly addresses: string[] = [];
  /** Each replica's /metrics and /healthz address ("" for one that serves none), in the same order. */
  readonly metricsAddresses: string[] = [];
  private workerCount = 0;

  private constructor(
    readonly options: LocalGridOptions,
    readonly redisUrl: string,
    public redis: LocalRedis | undefined,
  ) {}

  /** The first coordinator replica. */
  get coordinator(): ChildProcess {
    const first = this.coordinators[0];
    if (!first) throw new Error('the grid has no coordinator');
    return first;
  }

  get address(): string {
    return this.addresses[0] ?? '';
  }

  static async start(options: LocalGridOptions): Promise<LocalGrid> {
    await mkdir(path.join(options.dataDir, 'logs'), { recursive: true });
    const redis = options.redisUrl ? undefined : await startRedisServer({ dir: path.join(options.dataDir, 'redis') });
    const redisUrl = options.redisUrl ?? redis?.url ?? '';
    const grid = new LocalGrid(options, redisUrl, redis);
    try {
      await grid.addCoordinator(options.listen ?? '127.0.0.1:0');
      for (let i = 1; i < (options.replicas ?? 1); i++) await grid.addCoordinator('127.0.0.1:0');
      await Promise.all(Array.from({ length: options.workers ?? 2 }, () => grid.addWorker()));
      return grid;
    } catch (err) {
      await grid.stop();
      throw err;
    }
  }

  /** Starts one more coordinator replica; resolves with its address once it listens. */
  async addCoordinator(listen = '127.0.0.1:0'): Promise<string> {
    const { child, address, metricsAddress } = await LocalGrid.launchCoordinator(this.options, this.redisUrl, listen, this.coordinators.length, '127.0.0.1:0');
    this.coordinators.push(child);
    this.addresses.push(address);
    this.metricsAddresses.push(metricsAddress);
    return address;
  }

  private static stdio(options: LocalGridOptions, name: string): ['ignore', 'inherit' | number, 'inherit' | number, 'ipc'] {
    if (options.logs === 'inherit') return ['ignore', 'inherit', 'inherit', 'ipc'];
    const fd = openSync(path.join(options.dataDir, 'logs', `${name}.log`), 'a');
    return ['ignore', fd, fd, 'ipc'];
  }

  /**
   * This process's environment without the TLS settings a user's shell may hold for another
   * grid (a CA, a client certificate, MMGRID_INSECURE…): the local grid's coordinators and
   * workers agree on their transport through the arguments given here.
   */
  private static env(options: LocalGridOptions): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of TRANSPORT_ENV) delete env[name];
    return { ...env, ...(options.env ?? {}) };
  }

  /** `metricsListen` applies unless the grid's coordinatorArgs name a metrics address. */
  private static async launchCoordinator(
    options: LocalGridOptions,
    redisUrl: string,
    listen: string,
    index: number,
    metricsListen: string,
  ): Promise<{ child: ChildProcess; address: string; metricsAddress: string }> {
    const name = index === 0 ? 'coordinator' : `coordinator-${index + 1}`;
    const stdio = LocalGrid.stdio(options, name);
    const extra = options.coordinatorArgs ?? [];
    const metricsGiven = extra.some((a) => a === '--metrics-listen' || a.startsWith('--metrics-listen='));
    const child = fork(
      binOf('@mmgrid/coordinator'),
      [
        '--listen', listen,
        '--redis', redisUrl,
        '--blob-dir', path.join(options.dataDir, 'blobs'),
        '--id', name,
        ...(metricsGiven ? [] : ['--metrics-listen', metricsListen]),
        ...extra,
      ],
      // Its own process group: a Ctrl-C in the terminal reaches only the parent, which then
      // stops the grid in order (workers drain first, Redis goes last).
      { stdio, env: LocalGrid.env(options), detached: true },
    );
    closeFds(stdio);
    const ready = await waitForMessage(child, 'ready', 30_000, name, options);
    if (!ready.address) throw new CliError('the coordinator started without telling its address', ExitCode.INTERNAL);
    return { child, address: ready.address, metricsAddress: ready.metricsAddress ?? '' };
  }

  /** Starts a coordinator replica again (after it was stopped or killed), on the same ports. */
  async restartCoordinator(index = 0): Promise<void> {
    const port = this.addresses[index]?.split(':').pop() ?? '0';
    const metricsPort = this.metricsAddresses[index]?.split(':').pop() || '0';
    const { child, address, metricsAddress } = await LocalGrid.launchCoordinator(this.options, this.redisUrl, `127.0.0.1:${port}`, index, `127.0.0.1:${metricsPort}`);
    this.coordinators[index] = child;
    this.addresses[index] = address;
    this.metricsAddresses[index] = metricsAddress;
  }

  /** Stops the private Redis (it flushes its append-only file) and starts it again on its port. */
  async restartRedis(): Promise<void> {
    const redis = this.redis;
    if (!redis) throw new Error('this grid uses an external Redis');
    await redis.stop();
    this.redis = await startRedisServer({ dir: redis.dir, port: redis.port });
  }

  /** Starts one more worker process and resolves once it is connected. */
  async addWorker(extraArgs: readonly string[] = []): Promise<ChildProcess> {
    this.workerCount += 1;
    const name = `worker-${this.workerCount}`;
    const stdio = LocalGrid.stdio(this.options, name);
    const child = fork(
      binOf('@mmgrid/worker'),
      [
        // Every replica, starting at a different one per worker, so workers spread over the
        // replicas and one whose coordinator dies moves to another.
        '--coordinator', rotate(this.addresses, this.workerCount - 1).join(','),
        '--name', name,
        '--state-dir', path.join(this.options.dataDir, name),
        // Before the extra arguments: a later --metrics-listen among them wins.
        '--metrics-listen', '127.0.0.1:0',
        ...(this.options.workerArgs ?? []),
        ...extraArgs,
      ],
      { stdio, env: LocalGrid.env(this.options), detached: true },
    );
    closeFds(stdio);
    const index = this.workers.push(child) - 1;
    this.workerMetricsAddresses[index] = '';
    const connected = await waitForMessage(child, 'connected', 60_000, name, this.options);
    this.workerMetricsAddresses[index] = connected.metricsAddress ?? '';
    return child;
  }

  /** Stops workers (drain), then the coordinators, then the private Redis. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => stopChild(w, 'SIGTERM', 40_000)));
    await Promise.all(this.coordinators.map((c) => stopChild(c, 'SIGTERM', 10_000)));
    await this.redis?.stop();
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function closeFds(stdio: readonly unknown[]): void {
  for (const s of new Set(stdio)) if (typeof s === 'number') closeSync(s);
}

function waitForMessage(child: ChildProcess, type: string, timeoutMs: number, what: string, options: LocalGridOptions): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new CliError(`${what} did not become ready within ${timeoutMs / 1000} s${logHint(options, what)}`, ExitCode.UNAVAILABLE));
    }, timeoutMs);
    const onMessage = (message: ChildMessage): void => {
      if (message.type !== type) return;
      cleanup();
      resolve(message);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new CliError(`${what} exited (code ${code}) before it was ready${logHint(options, what)}`, ExitCode.UNAVAILABLE));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function logHint(options: LocalGridOptions, name: string): string {
  if (options.logs === 'inherit') return '';
  return `; see ${path.join(options.dataDir, 'logs', `${name}.log`)}`;
}

/** Signals a child and waits for it to exit, killing it if it takes longer than `timeoutMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}
