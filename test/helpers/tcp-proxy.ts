import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a coordinator, for cutting a worker's connection the way a
 * network does: `cut()` drops every open connection at once; new ones are let through.
 */
export class TcpProxy {
  private constructor(
    private readonly server: Server,
    readonly address: string,
    private readonly sockets: Set<Socket>,
  ) {}

  static async start(target: string): Promise<TcpProxy> {
    const [host = '127.0.0.1', port = '0'] = target.split(':');
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = connect({ host, port: Number(port) });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    return new TcpProxy(server, `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`, sockets);
  }

  /** Drops every connection through the proxy (both directions), like a network failure. */
  cut(): number {
    const n = this.sockets.size;
    for (const s of this.sockets) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    this.server.close();
    await once(this.server, 'close');
  }
}
