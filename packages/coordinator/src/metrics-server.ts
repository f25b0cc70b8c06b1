import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface MetricsServerDeps {
  readonly metrics: Metrics;
  /** Resolves when Redis answers (GET /healthz), rejects otherwise. */
  readonly ping: () => Promise<unknown>;
  readonly logger: Logger;
}

/** How long /healthz waits for Redis before answering 503. */
const HEALTH_TIMEOUT_MS = 2_000;

/**
 * The replica's HTTP side: `GET /metrics` for Prometheus and `GET /healthz` (200 "ok" while
 * Redis answers) for load balancers and orchestrators. Nothing else is served.
 */
export class MetricsServer {
  private server: Server | undefined;

  constructor(private readonly deps: MetricsServerDeps) {}

  /**
   * Listens on host:port (port 0 picks a free one); resolves with the bound "host:port", or
   * undefined when the address cannot be bound. A replica without metrics still serves the
   * grid, so that is a warning, not a failure.
   */
  async start(host: string, port: number): Promise<string | undefined> {
    const server = createServer((req, res) => this.handle(req, res));
    // A scrape keeps its connection open; stop() must not wait for it.
    server.keepAliveTimeout = 5_000;
    try {
      server.listen(port, host);
      await once(server, 'listening');
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : String(err);
      this.deps.logger.warn(
        { listen: `${host}:${port}`, err: code },
        `cannot listen for metrics on ${formatHost(host)}:${port} (${code}); this replica runs without /metrics and /healthz (set --metrics-listen, or "off")`,
      );
      server.close();
      return undefined;
    }
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    this.deps.logger.info({ listen: `${formatHost(host)}:${bound}` }, 'serving /metrics and /healthz');
    return `${formatHost(shown)}:${bound}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/metrics') {
      this.deps.metrics.text().then(
        (text) => reply(res, 200, this.deps.metrics.contentType, text),
        (err: unknown) => {
          this.deps.logger.error({ err: String(err) }, 'collecting metrics failed');
          reply(res, 500, 'text/plain; charset=utf-8', 'collecting metrics failed; the coordinator log has the details\n');
        },
      );
      return;
    }
    if (path === '/healthz') {
      void this.redisAnswers().then((ok) =>
        ok ? reply(res, 200, 'text/plain; charset=utf-8', 'ok\n') : reply(res, 503, 'text/plain; charset=utf-8', 'redis is not answering\n'),
      );
      return;
    }
    reply(res, 404, 'text/plain; charset=utf-8', 'not found: this server has /metrics and /healthz\n');
  }

  private async redisAnswers(): Promise<boolean> {
    const ac = new AbortController();
    const timeout = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), HEALTH_TIMEOUT_MS);
      ac.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    });
    try {
      return await Promise.race([this.deps.ping().then(
        () => true,
        () => false,
      ), timeout]);
    } finally {
      ac.abort();
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  }
}

function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
