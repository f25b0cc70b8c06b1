import { credentials, Metadata, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { isLoopbackHost, parseCoordinatorAddress } from '@mmgrid/core';
import { MmgridClientError, type Transport } from './errors.js';
import { OPTION_SETTING_NAMES, type SettingNames } from './setting-names.js';
import { loadClientTlsFiles } from './tls-files.js';

/** How to reach a coordinator. */
export interface ConnectionOptions {
  /**
   * "HOST:PORT" of a coordinator replica; "grpcs://HOST:PORT" (or "https://") asks for TLS and
   * "grpc://HOST:PORT" (or "http://") for plaintext, whatever `tls` says. @default "127.0.0.1:7070"
   */
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
  /**
   * true: TLS; false: plaintext, even to another machine (`--insecure`). An address with a
   * scheme decides for itself. @default TLS, except plaintext to a loopback address
   * (127.0.0.1, ::1, localhost) when no CA, certificate or server name is given either
   */
  tls?: boolean;
  /** PEM file of the CA certificates to trust instead of the system's (a private CA). @default the system's */
  caFile?: string;
  /** PEM file of a client certificate, for a coordinator that requires mutual TLS. With keyFile. @default none */
  certFile?: string;
  /** PEM file of that certificate's private key. @default none */
  keyFile?: string;
  /** Name the coordinator's certificate must carry, when it differs from the address's host. @default the host */
  serverName?: string;
  /**
   * How error messages name these settings when they say what to change: a program's user
   * sets these options (the default); a command line passes FLAG_SETTING_NAMES. @default OPTION_SETTING_NAMES
   */
  settingNames?: SettingNames;
}

export interface ResolvedConnection {
  /** "HOST:PORT", without a scheme. */
  readonly address: string;
  /** Whether calls go over TLS. */
  readonly transport: Transport;
  /** How messages name the settings (ConnectionOptions.settingNames). */
  readonly names: SettingNames;
  readonly credentials: ChannelCredentials;
  readonly channelOptions: ChannelOptions;
  /** Fresh metadata for one call (it carries the token). */
  metadata(): Metadata;
}

export const DEFAULT_COORDINATOR = '127.0.0.1:7070';

/**
 * Whether a connection to this address uses TLS: the address's scheme, then `tls`, then TLS
 * unless the address is a loopback one and nothing about TLS was asked for.
 *
 * @throws MmgridClientError (INVALID_ARGUMENT) for contradictory settings.
 */
export function resolveTransport(given: ConnectionOptions = {}): { address: string; transport: Transport } {
  const options = withoutEmptyFiles(given);
  const names = options.settingNames ?? OPTION_SETTING_NAMES;
  const parsed = parseCoordinatorAddress('coordinator', options.address ?? DEFAULT_COORDINATOR);
  const material = options.caFile !== undefined || options.certFile !== undefined || options.keyFile !== undefined || options.serverName !== undefined;
  const tlsSettings = `${names.caFile.name}, ${names.certFile.name}, ${names.keyFile.name} or ${names.serverName.name}`;
  if (options.tls === false && material) {
    throw new MmgridClientError('INVALID_ARGUMENT', `${names.insecure.name} (plaintext) does not go with ${tlsSettings} (TLS settings); leave one or the other out`);
  }
  const scheme = parsed.tls;
  if (scheme === false && material) {
    throw new MmgridClientError('INVALID_ARGUMENT', `${options.address ?? ''} asks for plaintext (grpc://), which does not go with ${tlsSettings}; use grpcs:// or leave them out`);
  }
  const tls = scheme ?? options.tls ?? (material || !isLoopbackHost(parsed.host));
  return { address: parsed.address, transport: tls ? 'tls' : 'plaintext' };
}

/**
 * Resolves how to call a coordinator. With TLS, the CA, certificate and key files are read
 * (and checked) here, so call it again to pick up renewed certificates.
 *
 * @throws MmgridClientError (INVALID_ARGUMENT; a TlsFileError for a bad file)
 */
export function resolveConnection(given: ConnectionOptions = {}): ResolvedConnection {
  const options = withoutEmptyFiles(given);
  const { address, transport } = resolveTransport(options);
  const names = options.settingNames ?? OPTION_SETTING_NAMES;
  const token = options.token ?? '';
  const tenant = options.tenant ?? '';
  const maxMessageBytes = options.maxMessageBytes ?? 8 * 1024 * 1024;
  let channelCredentials = credentials.createInsecure();
  const serverName: ChannelOptions = {};
  if (transport === 'tls') {
    const { ca, cert, key } = loadClientTlsFiles({ caFile: options.caFile, certFile: options.certFile, keyFile: options.keyFile }, new Date(), names);
    channelCredentials = credentials.createSsl(ca, key, cert);
    if (options.serverName !== undefined) {
      serverName['grpc.ssl_target_name_override'] = options.serverName;
      serverName['grpc.default_authority'] = options.serverName;
    }
  }
  return {
    address,
    transport,
    names,
    credentials: channelCredentials,
    channelOptions: {
      'grpc.max_receive_message_length': maxMessageBytes,
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // A coordinator that restarts is found again within 5 s of its return (gRPC's own
      // backoff between connection attempts grows to 2 minutes otherwise).
      'grpc.max_reconnect_backoff_ms': 5_000,
      ...serverName,
    },
    metadata: () => {
      const md = new Metadata();
      if (token !== '') md.set('authorization', `Bearer ${token}`);
      if (tenant !== '') md.set('x-mmgrid-tenant', tenant);
      return md;
    },
  };
}

/** An empty file or name counts as not given (an environment variable set to ""). */
function withoutEmptyFiles(options: ConnectionOptions): ConnectionOptions {
  const out: ConnectionOptions = { ...options };
  for (const key of ['caFile', 'certFile', 'keyFile', 'serverName'] as const) {
    if (out[key]?.trim() === '') delete out[key];
  }
  return out;
}
