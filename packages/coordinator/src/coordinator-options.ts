import { durationOption, intOption, InvalidOptionError, isLoopbackHost, nonEmptyOption, parseHostPort, TENANT_PATTERN, type ValidatorSpec } from '@mmgrid/core';
import { TlsConfigError } from './errors.js';

/** Options for a coordinator replica. Every field is optional; see each default. */
export interface CoordinatorOptions {
  /** Redis URL. @default "redis://127.0.0.1:6379" */
  redisUrl?: string;
  /** Prefix of every Redis key mmgrid writes (BullMQ queues included). @default "mmgrid" */
  keyPrefix?: string;
  /** gRPC listen address; port 0 picks a free port. @default "0.0.0.0:7070" */
  listen?: string;
  /** Folder of the local-filesystem blob store. @default ".mmgrid/blobs" */
  blobDir?: string;
  /**
   * An S3-compatible bucket for blobs instead of the folder, as
   * "s3://bucket/prefix/?endpoint=http://host:9000&region=us-east-1" (credentials from the
   * usual AWS environment variables). @default none: the folder is used
   */
  blobStoreUrl?: string;
  /** Largest blob accepted, in bytes. @default 2 GiB */
  maxBlobBytes?: number;
  /** Largest gRPC message accepted, in bytes (2 MiB to 512 MiB). @default 8 MiB */
  maxMessageBytes?: number;
  /** How long a dispatched task's lease lasts without a heartbeat renewing it. @default 30 s */
  leaseMs?: number;
  /** How often workers send heartbeats. @default 5 s */
  heartbeatIntervalMs?: number;
  /** How often lapsed leases are looked for (BullMQ's stalled check). @default 10 s */
  stalledCheckIntervalMs?: number;
  /** A task whose worker vanishes this many times is failed as poison. @default 2 */
  maxStalledCount?: number;
  /** How long finished jobs, their tasks and events stay in Redis. @default 7 days */
  jobRetentionMs?: number;
  /** Assembly steps run at once by this replica. @default 4 */
  assemblyConcurrency?: number;
  /** Most shards (windows, frames, chunks) one input may be cut into. @default 20,000 */
  maxShards?: number;
  /** Most inputs one job may have. @default 1,000 */
  maxInputsPerJob?: number;
  /** Longest prompt, in characters. @default 32,768 */
  maxPromptChars?: number;
  /** Longest inline text input, in characters (a text file is a blob: maxBlobBytes). @default 1,000,000 */
  maxTextInputChars?: number;
  /**
   * Most jobs one tenant may have queued or running at once, across every replica (a quota);
   * a job counts from its submission until it completes, fails or is cancelled. @default 1,000
   */
  maxLiveJobsPerTenant?: number;
  /**
   * Jobs one tenant may submit per second, across every replica, on average (a token bucket
   * refilled at this rate; fractions allowed: 0.5 is one every two seconds). @default 50
   */
  submitRatePerTenant?: number;
  /** Submissions one tenant may make at once before submitRatePerTenant paces it (the bucket's size). @default 500 */
  submitBurstPerTenant?: number;
  /**
   * Tenants whose quota or rate differs from the grid's, by tenant name: `{ acme: {
   * maxLiveJobs: 5000, submitRate: 100 } }` (what is left out is the grid's). Every replica
   * must be given the same. @default none
   */
  tenantLimits?: Readonly<Record<string, TenantLimits>>;
  /** Name of this replica in logs and worker views. @default "<hostname>-<pid>" */
  coordinatorId?: string;
  /**
   * HTTP address of `GET /metrics` (Prometheus) and `GET /healthz`; port 0 picks a free port,
   * "off" serves neither. @default "0.0.0.0:9464"
   */
  metricsListen?: string;
  /**
   * How callers are authenticated: "open" (no tokens: every caller may do anything, for the
   * tenant it names; for a laptop or a trusted network) or "tokens" (every call needs a token
   * this grid issued; see docs/security.md). @default "open"
   */
  auth?: AuthMode;
  /**
   * A bootstrap admin token (from MMGRID_ADMIN_TOKEN), accepted as admin with `auth: "tokens"`
   * so the first tokens can be made; at least 24 characters. @default none
   */
  adminToken?: string;
  /**
   * PEM file of the gRPC listener's certificate (the server's first, then any intermediates):
   * the listener serves TLS. With tlsKeyFile. @default none
   */
  tlsCertFile?: string;
  /** PEM file of that certificate's private key. @default none */
  tlsKeyFile?: string;
  /**
   * PEM file of CA certificates: every caller of the listener (workers and submitters alike)
   * must present a client certificate signed by one of them (mutual TLS). Needs tlsCertFile.
   * @default none: no client certificate is asked for
   */
  tlsClientCaFile?: string;
  /**
   * Serve plaintext gRPC on an address other than a loopback one. Without TLS files a
   * coordinator refuses to listen on such an address unless this is set. @default false
   */
  insecure?: boolean;
  /**
   * Result verification (docs/security.md): kinds whose results other workers check, each with
   * its replication factor, 2 to 9 (that many workers of different owners must agree before a
   * result is committed), for example `{ "text.stats": 2 }`. Turns verification on, as does
   * canaryRate. @default {} (off: every result is committed as it comes)
   */
  verifyReplicas?: Record<string, number>;
  /** Validators per kind, over the built-in ones (see ValidatorSpec in @mmgrid/core). @default {} */
  verifyValidators?: Record<string, ValidatorSpec>;
  /** Most results gathered for one task before it fails with VERIFICATION_FAILED (3 to 20). @default 5 */
  verifyMaxReplicas?: number;
  /**
   * Share of results (0 to 1) whose answer is known in advance that are checked against it
   * (canaries); a wrong answer counts against the worker's trust. @default 0
   */
  canaryRate?: number;
  /** Verdicts a worker needs before its trust counts (1 to 1,000). @default 10 */
  trustMinVerdicts?: number;
  /** Below this trust score (0 to 1) every result of a worker is checked by another. @default 0.95 */
  trustReplicateBelow?: number;
  /** Below this trust score (0 to 1, at most trustReplicateBelow) a worker is quarantined. @default 0.8 */
  trustQuarantineBelow?: number;
}

/** Result verification, validated; undefined in ResolvedCoordinatorOptions when off. */
export interface ResolvedVerification {
  readonly replicas: ReadonlyMap<string, number>;
  readonly validators: Readonly<Record<string, ValidatorSpec>>;
  readonly maxReplicas: number;
  readonly canaryRate: number;
  readonly policy: { readonly minVerdicts: number; readonly replicateBelow: number; readonly quarantineBelow: number };
}

/** One tenant's exceptions to maxLiveJobsPerTenant, submitRatePerTenant and submitBurstPerTenant. */
export interface TenantLimits {
  readonly maxLiveJobs?: number;
  readonly submitRate?: number;
  readonly submitBurst?: number;
}

/** The TLS files of the gRPC listener. */
export interface ListenerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** Set: callers must present a certificate signed by one of these CAs. */
  readonly clientCaFile: string | undefined;
}

export const AUTH_MODES = ['open', 'tokens'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
/** The shortest bootstrap admin token accepted (e.g. `openssl rand -base64 32` gives 44). */
export const MIN_ADMIN_TOKEN_CHARS = 24;

/** The validated, fully specified form of CoordinatorOptions. */
export interface ResolvedCoordinatorOptions {
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly blobDir: string;
  readonly blobStoreUrl: string;
  readonly maxBlobBytes: number;
  readonly maxMessageBytes: number;
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
  readonly stalledCheckIntervalMs: number;
  readonly maxStalledCount: number;
  readonly jobRetentionMs: number;
  readonly assemblyConcurrency: number;
  readonly maxShards: number;
  readonly maxInputsPerJob: number;
  readonly maxPromptChars: number;
  readonly maxTextInputChars: number;
  readonly maxLiveJobsPerTenant: number;
  /** Submissions per second (may be fractional). */
  readonly submitRatePerTenant: number;
  readonly submitBurstPerTenant: number;
  /** The tenants with their own limits, each with every field given (the grid's where left out). */
  readonly tenantLimits: ReadonlyMap<string, Required<TenantLimits>>;
  readonly coordinatorId: string;
  /** Where /metrics and /healthz listen; undefined when turned off. */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined;
  readonly auth: AuthMode;
  /** "" for none. */
  readonly adminToken: string;
  /** The listener's TLS files; undefined: plaintext (on a loopback address, or with insecure). */
  readonly tls: ListenerTlsFiles | undefined;
  readonly insecure: boolean;
  /** Undefined: result verification is off. */
  readonly verification: ResolvedVerification | undefined;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Options that stay undefined when not given (no TLS unless files are named). */
type Unset = 'tlsCertFile' | 'tlsKeyFile' | 'tlsClientCaFile';
/** Options whose default is an object (kept as given; see resolveVerification). */
type Verify = 'verifyReplicas' | 'verifyValidators';

/** Fills defaults. Pure; validation is separate so defaults can be shown in --help. */
export function withDefaults(options: CoordinatorOptions, defaultId: string): Required<Omit<CoordinatorOptions, Unset | Verify>> & { readonly [K in Unset]: string | undefined } & Required<Pick<CoordinatorOptions, Verify>> {
  return {
    redisUrl: options.redisUrl ?? 'redis://127.0.0.1:6379',
    keyPrefix: options.keyPrefix ?? 'mmgrid',
    listen: options.listen ?? '0.0.0.0:7070',
    blobDir: options.blobDir ?? '.mmgrid/blobs',
    blobStoreUrl: options.blobStoreUrl ?? '',
    maxBlobBytes: options.maxBlobBytes ?? 2 * GiB,
    maxMessageBytes: options.maxMessageBytes ?? 8 * MiB,
    leaseMs: options.leaseMs ?? 30_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5_000,
    stalledCheckIntervalMs: options.stalledCheckIntervalMs ?? 10_000,
    maxStalledCount: options.maxStalledCount ?? 2,
    jobRetentionMs: options.jobRetentionMs ?? 7 * 24 * 3600_000,
    assemblyConcurrency: options.assemblyConcurrency ?? 4,
    maxShards: options.maxShards ?? 20_000,
    maxInputsPerJob: options.maxInputsPerJob ?? 1_000,
    maxPromptChars: options.maxPromptChars ?? 32_768,
    maxTextInputChars: options.maxTextInputChars ?? 1_000_000,
    maxLiveJobsPerTenant: options.maxLiveJobsPerTenant ?? 1_000,
    submitRatePerTenant: options.submitRatePerTenant ?? 50,
    submitBurstPerTenant: options.submitBurstPerTenant ?? 500,
    tenantLimits: options.tenantLimits ?? {},
    coordinatorId: options.coordinatorId ?? defaultId,
    metricsListen: options.metricsListen ?? '0.0.0.0:9464',
    auth: options.auth ?? 'open',
    adminToken: options.adminToken ?? '',
    tlsCertFile: options.tlsCertFile,
    tlsKeyFile: options.tlsKeyFile,
    tlsClientCaFile: options.tlsClientCaFile,
    insecure: options.insecure ?? false,
    verifyReplicas: options.verifyReplicas ?? {},
    verifyValidators: options.verifyValidators ?? {},
    verifyMaxReplicas: options.verifyMaxReplicas ?? 5,
    canaryRate: options.canaryRate ?? 0,
    trustMinVerdicts: options.trustMinVerdicts ?? 10,
    trustReplicateBelow: options.trustReplicateBelow ?? 0.95,
    trustQuarantineBelow: options.trustQuarantineBelow ?? 0.8,
  };
}

/** Validates every option; throws InvalidOptionError naming the option and its range. */
export function resolveCoordinatorOptions(options: CoordinatorOptions, defaultId: string): ResolvedCoordinatorOptions {
  const o = withDefaults(options, defaultId);
  if (!/^rediss?:\/\//.test(o.redisUrl)) throw new InvalidOptionError('redisUrl', 'a redis:// or rediss:// URL', o.redisUrl);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.keyPrefix)) {
    throw new InvalidOptionError('keyPrefix', '1 to 64 letters, digits, "_", "." or "-"', o.keyPrefix);
  }
  const { host, port } = parseHostPort('listen', o.listen);
  const leaseMs = durationOption('leaseMs', o.leaseMs, 1_000, 3_600_000);
  const heartbeatIntervalMs = durationOption('heartbeatIntervalMs', o.heartbeatIntervalMs, 100, 600_000);
  if (heartbeatIntervalMs * 2 > leaseMs) {
    throw new InvalidOptionError('heartbeatIntervalMs', `at most half of leaseMs (${leaseMs} ms) so a lease survives one lost heartbeat`, heartbeatIntervalMs);
  }
  return {
    redisUrl: o.redisUrl,
    keyPrefix: o.keyPrefix,
    listenHost: host.replace(/^\[|\]$/g, ''),
    listenPort: port,
    blobDir: nonEmptyOption('blobDir', o.blobDir),
    blobStoreUrl: o.blobStoreUrl,
    maxBlobBytes: intOption('maxBlobBytes', o.maxBlobBytes, 1, Number.MAX_SAFE_INTEGER),
    // A blob message (BLOB_CHUNK_BYTES) and its envelope must fit.
    maxMessageBytes: intOption('maxMessageBytes', o.maxMessageBytes, 2 * MiB, 512 * MiB),
    leaseMs,
    heartbeatIntervalMs,
    stalledCheckIntervalMs: durationOption('stalledCheckIntervalMs', o.stalledCheckIntervalMs, 100, 600_000),
    maxStalledCount: intOption('maxStalledCount', o.maxStalledCount, 1, 100),
    jobRetentionMs: durationOption('jobRetentionMs', o.jobRetentionMs, 60_000, 365 * 24 * 3600_000),
    assemblyConcurrency: intOption('assemblyConcurrency', o.assemblyConcurrency, 1, 256),
    maxShards: intOption('maxShards', o.maxShards, 1, 1_000_000),
    maxInputsPerJob: intOption('maxInputsPerJob', o.maxInputsPerJob, 1, 100_000),
    maxPromptChars: intOption('maxPromptChars', o.maxPromptChars, 1, 10_000_000),
    maxTextInputChars: intOption('maxTextInputChars', o.maxTextInputChars, 1, 100_000_000),
    maxLiveJobsPerTenant: intOption('maxLiveJobsPerTenant', o.maxLiveJobsPerTenant, 1, 10_000_000),
    submitRatePerTenant: rateOption('submitRatePerTenant', o.submitRatePerTenant),
    submitBurstPerTenant: intOption('submitBurstPerTenant', o.submitBurstPerTenant, 1, 1_000_000),
    tenantLimits: resolveTenantLimits(o.tenantLimits, {
      maxLiveJobs: intOption('maxLiveJobsPerTenant', o.maxLiveJobsPerTenant, 1, 10_000_000),
      submitRate: rateOption('submitRatePerTenant', o.submitRatePerTenant),
      submitBurst: intOption('submitBurstPerTenant', o.submitBurstPerTenant, 1, 1_000_000),
    }),
    coordinatorId: nonEmptyOption('coordinatorId', o.coordinatorId),
    metricsListen: resolveMetricsListen(o.metricsListen),
    ...resolveAuth(o.auth, o.adminToken),
    tls: resolveListenerTls(o, host),
    insecure: o.insecure,
    verification: resolveVerification(o),
  };
}

function ratioOption(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new InvalidOptionError(name, 'a number from 0 to 1', value);
  return value;
}

/** Verification is on when some kind is replicated or canaries are checked. */
function resolveVerification(o: ReturnType<typeof withDefaults>): ResolvedVerification | undefined {
  const replicas = new Map<string, number>();
  for (const [kind, n] of Object.entries(o.verifyReplicas)) {
    nonEmptyOption('verifyReplicas', kind);
    replicas.set(kind, intOption(`verifyReplicas.${kind}`, n, 1, 9));
  }
  const maxReplicas = intOption('verifyMaxReplicas', o.verifyMaxReplicas, 3, 20);
  for (const [kind, n] of replicas) {
    if (n >= maxReplicas) throw new InvalidOptionError(`verifyReplicas.${kind}`, `less than verifyMaxReplicas (${maxReplicas}), so a disagreement can be settled`, n);
  }
  const canaryRate = ratioOption('canaryRate', o.canaryRate);
  const replicateBelow = ratioOption('trustReplicateBelow', o.trustReplicateBelow);
  const quarantineBelow = ratioOption('trustQuarantineBelow', o.trustQuarantineBelow);
  if (quarantineBelow > replicateBelow) throw new InvalidOptionError('trustQuarantineBelow', `at most trustReplicateBelow (${replicateBelow})`, quarantineBelow);
  const minVerdicts = intOption('trustMinVerdicts', o.trustMinVerdicts, 1, 1000);
  if (replicas.size === 0 && canaryRate === 0) return undefined;
  return { replicas, validators: { ...o.verifyValidators }, maxReplicas, canaryRate, policy: { minVerdicts, replicateBelow, quarantineBelow } };
}

/**
 * TLS files go together; plaintext is served on a loopback address, or elsewhere only when
 * asked for with insecure (the files themselves are read when the coordinator is made).
 */
function resolveListenerTls(o: ReturnType<typeof withDefaults>, host: string): ListenerTlsFiles | undefined {
  const given = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';
  const cert = given(o.tlsCertFile) ? o.tlsCertFile : undefined;
  const key = given(o.tlsKeyFile) ? o.tlsKeyFile : undefined;
  const clientCa = given(o.tlsClientCaFile) ? o.tlsClientCaFile : undefined;
  if (cert !== undefined && key === undefined) throw new TlsConfigError('--tls-key', '--tls-cert needs --tls-key (MMGRID_TLS_KEY) too: the certificate\'s private key');
  if (key !== undefined && cert === undefined) throw new TlsConfigError('--tls-cert', '--tls-key needs --tls-cert (MMGRID_TLS_CERT) too: the certificate it belongs to');
  if (clientCa !== undefined && cert === undefined) {
    throw new TlsConfigError('--tls-client-ca', '--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key: client certificates are asked for only over TLS');
  }
  if (cert !== undefined && key !== undefined) {
    if (o.insecure) throw new TlsConfigError('--insecure', '--insecure (plaintext) does not go with --tls-cert and --tls-key (TLS); leave one or the other out (check MMGRID_INSECURE)');
    return { certFile: cert, keyFile: key, clientCaFile: clientCa };
  }
  if (!o.insecure && !isLoopbackHost(host)) {
    throw new TlsConfigError(
      '--listen',
      `refusing to serve plaintext gRPC on ${o.listen}, an address other machines can reach: give --tls-cert and --tls-key (MMGRID_TLS_CERT, MMGRID_TLS_KEY; see docs/security.md), ` +
        'or --insecure (MMGRID_INSECURE=true) to serve plaintext on a network you trust, or listen on 127.0.0.1',
    );
  }
  return undefined;
}

function resolveAuth(auth: string, adminToken: string): { auth: AuthMode; adminToken: string } {
  if (!(AUTH_MODES as readonly string[]).includes(auth)) throw new InvalidOptionError('auth', `one of ${AUTH_MODES.join(', ')}`, auth);
  // The token's value is never put in an error message.
  if (adminToken !== '' && auth !== 'tokens') {
    throw new InvalidOptionError('adminToken', 'unset on an open grid (it only applies with auth "tokens"; an open grid lets everyone in)', '(set)');
  }
  if (adminToken !== '' && (adminToken.length < MIN_ADMIN_TOKEN_CHARS || /\s/.test(adminToken))) {
    throw new InvalidOptionError('adminToken', `at least ${MIN_ADMIN_TOKEN_CHARS} characters without spaces (for example: openssl rand -base64 32)`, `(${adminToken.length} characters)`);
  }
  return { auth: auth as AuthMode, adminToken };
}

const TENANT_LIMIT_FIELDS = ['maxLiveJobs', 'submitRate', 'submitBurst'] as const;

/**
 * Checks each tenant's exceptions (the tenant's name, and each value in its option's range),
 * filling what is left out from the grid's limits. Takes anything: it may come from a file.
 */
function resolveTenantLimits(value: unknown, grid: Required<TenantLimits>): ReadonlyMap<string, Required<TenantLimits>> {
  const out = new Map<string, Required<TenantLimits>>();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidOptionError('tenantLimits', 'a map of tenant name → { maxLiveJobs, submitRate, submitBurst }', value);
  }
  for (const [tenant, limits] of Object.entries(value as Record<string, unknown>)) {
    if (!TENANT_PATTERN.test(tenant)) throw new InvalidOptionError('tenantLimits', 'tenant names (lower-case letters, digits, "_" and "-", up to 64)', tenant);
    const name = `tenantLimits.${tenant}`;
    if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) throw new InvalidOptionError(name, '{ maxLiveJobs, submitRate, submitBurst } (any of them)', limits);
    const given = limits as Record<string, unknown>;
    const unknownField = Object.keys(given).find((k) => !(TENANT_LIMIT_FIELDS as readonly string[]).includes(k));
    if (unknownField !== undefined) throw new InvalidOptionError(`${name}.${unknownField}`, `one of ${TENANT_LIMIT_FIELDS.join(', ')}`, given[unknownField]);
    const num = (field: (typeof TENANT_LIMIT_FIELDS)[number]): number => {
      const v = given[field];
      // A number written as a string ("0.5", as helm --set writes one) is taken as the number.
      if (typeof v === 'string' && v.trim() !== '') return Number(v);
      return v === undefined ? grid[field] : typeof v === 'number' ? v : Number.NaN;
    };
    out.set(tenant, {
      maxLiveJobs: intOption(`${name}.maxLiveJobs`, num('maxLiveJobs'), 1, 10_000_000),
      submitRate: rateOption(`${name}.submitRate`, num('submitRate')),
      submitBurst: intOption(`${name}.submitBurst`, num('submitBurst'), 1, 1_000_000),
    });
  }
  return out;
}

/** The slowest submission rate an option may set: one every 1,000 seconds. */
const MIN_SUBMIT_RATE = 0.001;

/** Submissions per second, from MIN_SUBMIT_RATE to 100,000 (fractions allowed). */
function rateOption(name: string, value: number): number {
  if (!Number.isFinite(value) || value < MIN_SUBMIT_RATE || value > 100_000) {
    throw new InvalidOptionError(name, `a number of submissions per second from ${MIN_SUBMIT_RATE} to 100000`, value);
  }
  return value;
}

/** "off" (any case) turns the metrics endpoint off; anything else must be HOST:PORT. */
function resolveMetricsListen(value: string): ResolvedCoordinatorOptions['metricsListen'] {
  if (value.trim().toLowerCase() === 'off') return undefined;
  try {
    const { host, port } = parseHostPort('metricsListen', value);
    return { host: host.replace(/^\[|\]$/g, ''), port };
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new InvalidOptionError('metricsListen', 'HOST:PORT (for example 0.0.0.0:9464) or "off"', value);
    throw err;
  }
}
