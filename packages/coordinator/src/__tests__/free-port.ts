import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * A local TCP port nobody listens on right now (bound, read, released): one for a private
 * server to listen on, or one where a connection is refused. The same as @mmgrid/cli's
 * freePort, which the coordinator's tests may not import.
 */
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
