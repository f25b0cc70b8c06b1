#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { booleanEnv, InvalidOptionError, parseYamlSource, unreadableFileReason, YamlSyntaxError } from '@mmgrid/core';
import { Coordinator } from './coordinator.js';
import { AUTH_MODES, type AuthMode, type CoordinatorOptions } from './coordinator-options.js';
import { TlsConfigError } from './errors.js';
import { LIMIT_OPTIONS, TENANT_LIMITS_OPTION, type LimitName } from './limits.js';

function integer(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return n;
  };
}

function decimal(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

function ratio(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`${name} must be a number from 0 to 1`);
    return n;
  };
}

/** A limit's option (see limits.ts): its flag and environment variable, a whole number unless `parse` says otherwise. */
function limitOption(limit: LimitName, argument: string, description: string, parse = integer): Option {
  const { flag, env } = LIMIT_OPTIONS[limit];
  return new Option(`${flag} <${argument}>`, description).env(env).argParser(parse(flag));
}

/** "kind=n,kind=n" → { kind: n }. */
function verifyList(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const match = /^([^=\s]+)=(\d+)$/.exec(item);
    if (!match?.[1] || !match[2]) usage(`--verify takes kind=replicas pairs separated by commas, e.g. text.stats=2; not "${item}"`);
    out[match[1]] = Number(match[2]);
  }
  return out;
}

const program = new Command('mmgrid coordinator')
  .description('Run a coordinator replica: the gRPC API for submitters and workers, over Redis.')
  .addOption(new Option('--listen <host:port>', 'address to listen on').env('MMGRID_LISTEN').default('0.0.0.0:7070'))
  .addOption(new Option('--redis <url>', 'Redis URL').env('REDIS_URL').default('redis://127.0.0.1:6379'))
  .addOption(new Option('--key-prefix <prefix>', 'prefix of every Redis key').env('MMGRID_KEY_PREFIX').default('mmgrid'))
  .addOption(new Option('--blob-dir <dir>', 'folder of the blob store').env('MMGRID_BLOB_DIR').default('.mmgrid/blobs'))
  .addOption(new Option('--blob-store <url>', 'an S3-compatible bucket instead: s3://bucket/prefix/?endpoint=http://host:9000').env('MMGRID_BLOB_STORE'))
  .addOption(limitOption('maxShards', 'n', 'most shards one input may be cut into (default 20000)'))
  .addOption(new Option('--lease-ms <ms>', 'task lease length without a heartbeat').argParser(integer('--lease-ms')))
  .addOption(new Option('--heartbeat-ms <ms>', 'worker heartbeat interval').argParser(integer('--heartbeat-ms')))
  .addOption(new Option('--stalled-check-ms <ms>', 'how often lapsed leases are looked for').argParser(integer('--stalled-check-ms')))
  .addOption(limitOption('maxBlobBytes', 'bytes', 'largest blob accepted (default 2 GiB)'))
  .addOption(limitOption('maxMessageBytes', 'bytes', 'largest gRPC message accepted, 2 MiB to 512 MiB (default 8 MiB)'))
  .addOption(limitOption('maxInputsPerJob', 'n', 'most inputs one job may have (default 1000)'))
  .addOption(limitOption('maxPromptChars', 'n', 'longest prompt, in characters (default 32768)'))
  .addOption(limitOption('maxTextInputChars', 'n', 'longest inline text input, in characters (default 1000000)'))
  .addOption(limitOption('maxLiveJobsPerTenant', 'n', "most jobs one tenant may have queued or running at once, across all replicas (default 1000)"))
  .addOption(limitOption('submitRatePerTenant', 'per-second', 'jobs one tenant may submit per second on average, across all replicas; fractions allowed (default 50)', decimal))
  .addOption(limitOption('submitBurstPerTenant', 'n', 'jobs one tenant may submit at once before the rate paces it (default 500)'))
  .addOption(
    new Option(`${TENANT_LIMITS_OPTION.flag} <file>`, 'YAML (or JSON) file of tenants with their own quota or rate: "acme: { maxLiveJobs: 5000, submitRate: 100, submitBurst: 500 }"').env(
      TENANT_LIMITS_OPTION.env,
    ),
  )
  .addOption(new Option('--max-stalled-count <n>', 'a task whose worker vanishes more often than this is failed as poison').argParser(integer('--max-stalled-count')))
  .addOption(new Option('--id <name>', 'name of this replica in logs and worker views').env('MMGRID_COORDINATOR_ID'))
  .addOption(
    new Option('--metrics-listen <host:port>', 'HTTP address of GET /metrics (Prometheus) and GET /healthz; port 0 picks a free port, "off" turns both off')
      .env('MMGRID_METRICS_LISTEN')
      .default('0.0.0.0:9464'),
  )
  .addOption(
    new Option('--auth <mode>', '"open": no tokens, for a laptop or a trusted network; "tokens": every call needs a token this grid issued (docs/security.md)')
      .choices(AUTH_MODES)
      .env('MMGRID_AUTH')
      .default('open'),
  )
  // The bootstrap admin token is read from the environment only (MMGRID_ADMIN_TOKEN), never
  // from the command line, where other users of the machine could read it.
  .addHelpText('after', '\nEnvironment:\n  MMGRID_ADMIN_TOKEN  a bootstrap admin token (--auth tokens), at least 24 characters, e.g. from: openssl rand -base64 32')
  .addOption(new Option('--tls-cert <file>', "PEM certificate (chain) of the gRPC listener: serve TLS (see docs/security.md)").env('MMGRID_TLS_CERT'))
  .addOption(new Option('--tls-key <file>', "PEM private key of --tls-cert").env('MMGRID_TLS_KEY'))
  .addOption(
    new Option('--tls-client-ca <file>', 'PEM CA certificates: every caller (workers and submitters) must present a certificate they signed (mutual TLS)').env(
      'MMGRID_TLS_CLIENT_CA',
    ),
  )
  .addOption(
    new Option('--verify <kind=replicas,…>', 'result verification: kinds whose results that many workers of different owners must agree on before they are committed, e.g. text.stats=2 (docs/security.md)').env(
      'MMGRID_VERIFY',
    ),
  )
  .addOption(new Option('--verify-max-replicas <n>', 'most results gathered for one task before it fails with VERIFICATION_FAILED').argParser(integer('--verify-max-replicas')))
  .addOption(new Option('--canary-rate <ratio>', 'share (0 to 1) of results with a known answer checked against it, and chance per heartbeat that an idle worker is sent a canary task').argParser(ratio('--canary-rate')))
  .addOption(new Option('--trust-min-verdicts <n>', "verified results a worker needs before its trust counts").argParser(integer('--trust-min-verdicts')))
  .addOption(new Option('--trust-replicate-below <ratio>', 'trust score under which every result of a worker is checked by another').argParser(ratio('--trust-replicate-below')))
  .addOption(new Option('--trust-quarantine-below <ratio>', 'trust score under which a worker is quarantined (given no tasks)').argParser(ratio('--trust-quarantine-below')))
  // Not .env(): commander would take MMGRID_INSECURE=false as true; read below instead.
  .option('--insecure', 'serve plaintext gRPC on an address other machines can reach (env: MMGRID_INSECURE=true); without TLS files a coordinator listens in plaintext on loopback addresses only')
  .showHelpAfterError();

program.parse();
const flags = program.opts<{
  listen: string;
  redis: string;
  keyPrefix: string;
  blobDir: string;
  blobStore?: string;
  maxShards?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  stalledCheckMs?: number;
  maxBlobBytes?: number;
  maxMessageBytes?: number;
  maxInputsPerJob?: number;
  maxPromptChars?: number;
  maxTextInputChars?: number;
  maxLiveJobsPerTenant?: number;
  submitRatePerTenant?: number;
  submitBurstPerTenant?: number;
  tenantLimits?: string;
  maxStalledCount?: number;
  id?: string;
  metricsListen: string;
  auth: AuthMode;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  insecure?: boolean;
  verify?: string;
  verifyMaxReplicas?: number;
  canaryRate?: number;
  trustMinVerdicts?: number;
  trustReplicateBelow?: number;
  trustQuarantineBelow?: number;
}>();
const adminToken = process.env['MMGRID_ADMIN_TOKEN'] ?? '';

function usage(message: string): never {
  process.stderr.write(`mmgrid coordinator: ${message}\n`);
  process.exit(2);
}

/** The tenants' own limits, from --tenant-limits (checked with the other options, below). */
function readTenantLimits(file: string): NonNullable<CoordinatorOptions['tenantLimits']> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    usage(`${TENANT_LIMITS_OPTION.flag} ${file}: ${unreadableFileReason(err)}`);
  }
  try {
    // Any shape: resolveCoordinatorOptions checks every tenant and value.
    return parseYamlSource(text, file).value as NonNullable<CoordinatorOptions['tenantLimits']>;
  } catch (err) {
    if (err instanceof YamlSyntaxError) usage(`${err.where}: not valid YAML: ${err.reason}`);
    throw err;
  }
}

let insecure: boolean;
try {
  insecure = flags.insecure ?? booleanEnv('MMGRID_INSECURE', process.env['MMGRID_INSECURE']) ?? false;
} catch (err) {
  if (err instanceof InvalidOptionError) usage(err.message);
  throw err;
}

const options: CoordinatorOptions = {
  listen: flags.listen,
  redisUrl: flags.redis,
  keyPrefix: flags.keyPrefix,
  blobDir: flags.blobDir,
  ...(flags.blobStore !== undefined ? { blobStoreUrl: flags.blobStore } : {}),
  ...(flags.maxShards !== undefined ? { maxShards: flags.maxShards } : {}),
  ...(flags.leaseMs !== undefined ? { leaseMs: flags.leaseMs } : {}),
  ...(flags.heartbeatMs !== undefined ? { heartbeatIntervalMs: flags.heartbeatMs } : {}),
  ...(flags.stalledCheckMs !== undefined ? { stalledCheckIntervalMs: flags.stalledCheckMs } : {}),
  ...(flags.maxBlobBytes !== undefined ? { maxBlobBytes: flags.maxBlobBytes } : {}),
  ...(flags.maxMessageBytes !== undefined ? { maxMessageBytes: flags.maxMessageBytes } : {}),
  ...(flags.maxInputsPerJob !== undefined ? { maxInputsPerJob: flags.maxInputsPerJob } : {}),
  ...(flags.maxPromptChars !== undefined ? { maxPromptChars: flags.maxPromptChars } : {}),
  ...(flags.maxTextInputChars !== undefined ? { maxTextInputChars: flags.maxTextInputChars } : {}),
  ...(flags.maxLiveJobsPerTenant !== undefined ? { maxLiveJobsPerTenant: flags.maxLiveJobsPerTenant } : {}),
  ...(flags.submitRatePerTenant !== undefined ? { submitRatePerTenant: flags.submitRatePerTenant } : {}),
  ...(flags.submitBurstPerTenant !== undefined ? { submitBurstPerTenant: flags.submitBurstPerTenant } : {}),
  ...(flags.tenantLimits !== undefined && flags.tenantLimits !== '' ? { tenantLimits: readTenantLimits(flags.tenantLimits) } : {}),
  ...(flags.maxStalledCount !== undefined ? { maxStalledCount: flags.maxStalledCount } : {}),
  ...(flags.id !== undefined ? { coordinatorId: flags.id } : {}),
  metricsListen: flags.metricsListen,
  auth: flags.auth,
  ...(adminToken !== '' ? { adminToken } : {}),
  ...(flags.tlsCert !== undefined ? { tlsCertFile: flags.tlsCert } : {}),
  ...(flags.tlsKey !== undefined ? { tlsKeyFile: flags.tlsKey } : {}),
  ...(flags.tlsClientCa !== undefined ? { tlsClientCaFile: flags.tlsClientCa } : {}),
  insecure,
  ...(flags.verify !== undefined ? { verifyReplicas: verifyList(flags.verify) } : {}),
  ...(flags.verifyMaxReplicas !== undefined ? { verifyMaxReplicas: flags.verifyMaxReplicas } : {}),
  ...(flags.canaryRate !== undefined ? { canaryRate: flags.canaryRate } : {}),
  ...(flags.trustMinVerdicts !== undefined ? { trustMinVerdicts: flags.trustMinVerdicts } : {}),
  ...(flags.trustReplicateBelow !== undefined ? { trustReplicateBelow: flags.trustReplicateBelow } : {}),
  ...(flags.trustQuarantineBelow !== undefined ? { trustQuarantineBelow: flags.trustQuarantineBelow } : {}),
};

let coordinator: Coordinator;
try {
  coordinator = new Coordinator(options);
} catch (err) {
  if (err instanceof InvalidOptionError) {
    // Named as a person sets it: MMGRID_ADMIN_TOKEN, not the option's field; a limit by its flag.
    const limit = Object.hasOwn(LIMIT_OPTIONS, err.option) ? LIMIT_OPTIONS[err.option as LimitName] : undefined;
    if (err.option === 'adminToken') usage(`MMGRID_ADMIN_TOKEN must be ${err.allowed}`);
    if (err.option.startsWith('tenantLimits')) usage(`${TENANT_LIMITS_OPTION.flag} ${flags.tenantLimits ?? ''}: ${err.message.replace(/^option tenantLimits\.?/, '').trim()}`);
    usage(limit ? `${limit.flag} (${limit.env}) must be ${err.allowed} (got ${String(err.value)})` : err.message);
  }
  if (err instanceof TlsConfigError) usage(err.message);
  throw err;
}

try {
  const { address, metricsAddress } = await coordinator.start();
  // When launched by `mmgrid dev`, tell the parent where we listen (metricsAddress: undefined when off or not bound).
  process.send?.({ type: 'ready', address, metricsAddress });
} catch (err) {
  process.stderr.write(`mmgrid coordinator: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(5);
}

let stopping = false;
const stop = (signal: NodeJS.Signals): void => {
  if (stopping) {
    process.exit(130);
  }
  stopping = true;
  coordinator.logger.info({ signal }, 'stopping');
  coordinator.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('disconnect', () => stop('SIGTERM'));
