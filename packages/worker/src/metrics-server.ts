import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsListenError } from './errors.js';
import type { WorkerMetrics } from './metrics.js';

/** Whether the worker is healthy, and in one line why (or why not). */
export interface WorkerHealth {
  readonly ok: boolean;
  readonly reason: string;
}

export interface MetricsServer {
  /** "HOST:PORT" it listens on (the port the system chose for port 0). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz` (200 while `health()` is ok,
 * else 503; the body is the one-line reason) over plain HTTP, for the machine's owner.
 *
 * @throws MetricsListenError when the address cannot be bound
 */
export async function startMetricsServer(listen: { readonly host: string; readonly port: number }, metrics: WorkerMetrics, health: () => WorkerHealth): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    handle(req, res, metrics, health).catch((err: unknown) => reply(res, 500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`));
  });
  // IPv6 hosts are written in brackets in HOST:PORT; listen() takes them bare.
  const host = listen.host.replace(/^\[(.*)\]$/, '$1');
  try {
    server.listen(listen.port, host);
    await once(server, 'listening');
  } catch (err) {
    server.close(() => undefined);
    throw new MetricsListenError(`${listen.host}:${listen.port}`, { cause: err });
  }
  // A scraper's keep-alive connection must not hold the process open at exit.
  server.unref();
  const bound = server.address() as AddressInfo;
  return {
    address: `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`,
    close: async () => {
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, metrics: WorkerMetrics, health: () => WorkerHealth): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') return reply(res, 404, 'not found: this worker serves /metrics and /healthz\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return reply(res, 405, `${req.method ?? '?'} is not allowed; use GET\n`);
  }
  if (path === '/healthz') {
    const { ok, reason } = health();
    return reply(res, ok ? 200 : 503, `${reason}\n`);
  }
  return reply(res, 200, await metrics.text(), metrics.contentType);
}

function reply(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
