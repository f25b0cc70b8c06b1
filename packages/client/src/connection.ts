import { credentials, Metadata, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { parseHostPort } from '@mmgrid/core';

/** How to reach a coordinator. */
export interface ConnectionOptions {
  /** "HOST:PORT" of a coordinator replica. @default "127.0.0.1:7070" */
  address?: string;
  /** Bearer token sent with every call. @default none */
  token?: string;
  /**
   * Tenant to act for, on an open grid (one without tokens); a grid with tokens takes the
   * tenant from the token and ignores this. @default the grid's default tenant
   */
  tenant?: string;
  /** Largest message received, in bytes. @default 8 MiB */
  maxMessageBytes?: number;
}

export interface ResolvedConnection {
  readonly address: string;
  readonly credentials: ChannelCredentials;
  readonly channelOptions: ChannelOptions;
  /** Fresh metadata for one call (it carries the token). */
  metadata(): Metadata;
}

export const DEFAULT_COORDINATOR = '127.0.0.1:7070';

export function resolveConnection(options: ConnectionOptions = {}): ResolvedConnection {
  const address = options.address ?? DEFAULT_COORDINATOR;
  parseHostPort('coordinator', address);
  const token = options.token ?? '';
  const tenant = options.tenant ?? '';
  const maxMessageBytes = options.maxMessageBytes ?? 8 * 1024 * 1024;
  return {
    address,
    credentials: credentials.createInsecure(),
    channelOptions: {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
    },
    metadata: () => {
      const md = new Metadata();
      if (token !== '') md.set('authorization', `Bearer ${token}`);
      if (tenant !== '') md.set('x-mmgrid-tenant', tenant);
      return md;
    },
  };
}
