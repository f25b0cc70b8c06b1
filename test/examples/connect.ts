/**
 * Ways to connect to a coordinator. Each function returns a client; close it when done.
 */
import { MmgridClient } from '@mmgrid/client';

/** A coordinator on this machine, in plaintext (the default for a loopback address). */
export function local(): MmgridClient {
  return new MmgridClient({ address: '127.0.0.1:7070' });
}

/** A coordinator elsewhere, over TLS with a certificate the system trusts, and a token. */
export function remote(token: string): MmgridClient {
  return new MmgridClient({ address: 'grid.example.com:7070', token });
}

/** A coordinator with a certificate from a private CA, requiring mutual TLS. */
export function privateCa(): MmgridClient {
  return new MmgridClient({
    address: 'grpcs://10.0.0.5:7070',
    caFile: '/etc/mmgrid/ca.pem',
    certFile: '/etc/mmgrid/client.pem',
    keyFile: '/etc/mmgrid/client-key.pem',
    // The name in the coordinator's certificate, when the address does not carry it.
    serverName: 'coordinator.grid.internal',
  });
}

/** The address and token from the environment variables the `mmgrid` CLI reads too. */
export function fromEnvironment(): MmgridClient {
  return new MmgridClient({
    address: process.env['MMGRID_COORDINATOR'] ?? '127.0.0.1:7070',
    ...(process.env['MMGRID_TOKEN'] ? { token: process.env['MMGRID_TOKEN'] } : {}),
  });
}

/** A client is closed once its work is done, also when a call failed. */
export async function countQueuedJobs(): Promise<number> {
  const client = new MmgridClient({ address: '127.0.0.1:7070' });
  try {
    const { jobs } = await client.list({ states: ['queued'] });
    return jobs.length;
  } finally {
    client.close();
  }
}
