import { once } from 'node:events';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An HTTP server a test started on a free local port. */
export interface LocalHttpServer {
  /** Base URL, no trailing slash: `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Drops open connections (keep-alive ones included) and closes the server; needs no `this`. */
  stop(this: void): Promise<void>;
}

/** Starts an HTTP server answering with `handler` on 127.0.0.1, on a free port. */
export async function startHttpServer(handler: RequestListener): Promise<LocalHttpServer> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
