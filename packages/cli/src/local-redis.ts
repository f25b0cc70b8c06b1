import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { RECOMMENDED_HASH_MAX_LISTPACK_VALUE } from '@mmgrid/core';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** A private redis-server started for a local grid or a test. */
export interface LocalRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Stops it (SIGTERM: Redis flushes its append-only file and exits). */
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  /** Folder for its data files (append-only file). */
  readonly dir: string;
  /** Port to listen on. @default a free port */
  readonly port?: number;
  /**
   * Keep an append-only file, fsynced every second: the settings mmgrid's durability rests on
   * (see docs/operations.md). @default true
   */
  readonly appendOnly?: boolean;
  /** @default "redis-server" from PATH */
  readonly command?: string;
}

export const REDIS_INSTALL_HINT =
  'redis-server is not installed. Install it with "sudo apt-get install -y redis-server" (Debian/Ubuntu) or "brew install redis" (macOS), or point REDIS_URL at a running Redis.';

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts redis-server and resolves once it accepts connections. */
export async function startRedisServer(options: LocalRedisOptions): Promise<LocalRedis> {
  await mkdir(options.dir, { recursive: true });
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await launch(options, port);
    } catch (err) {
      lastError = err;
      if (err instanceof CliError || options.port !== undefined) throw err;
    }
  }
  throw lastError;
}

async function launch(options: LocalRedisOptions, port: number): Promise<LocalRedis> {
  const appendOnly = options.appendOnly ?? true;
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', options.dir,
    '--save', '',
    '--appendonly', appendOnly ? 'yes' : 'no',
    '--appendfsync', 'everysec',
    // What a queued task costs in Redis (deploy/redis/redis.conf, docs/operations.md).
    '--hash-max-listpack-value', String(RECOMMENDED_HASH_MAX_LISTPACK_VALUE),
    '--daemonize', 'no',
    '--logfile', '',
  ];
  // Its own process group, so a Ctrl-C meant for the grid does not stop Redis before the rest.
  const child = spawn(options.command ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-8000);
      if (output.includes('Ready to accept connections')) {
        cleanup();
        resolve();
      }
    };
    const onError = (err: NodeJS.ErrnoException): void => {
      cleanup();
      reject(err.code === 'ENOENT' ? new CliError(REDIS_INSTALL_HINT, ExitCode.UNAVAILABLE) : err);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`redis-server exited (code ${code}) before it was ready: ${output.trim().split('\n').slice(-3).join(' | ')}`));
    };
    const cleanup = (): void => {
      child.stdout?.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.on('error', onError);
    child.on('exit', onExit);
  });
  // Keep draining its output so it never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir: options.dir,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
