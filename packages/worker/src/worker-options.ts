import { homedir, cpus } from 'node:os';
import path from 'node:path';
import { durationOption, intOption, InvalidOptionError, nonEmptyOption, parseCoordinatorAddress, parseHostPort, TASK_KIND_PATTERN } from '@mmgrid/core';
import type { SettingNames } from '@mmgrid/client';

/** Options of a worker daemon. Every field is optional; see each default. */
export interface WorkerOptions {
  /**
   * Coordinator "HOST:PORT", or several separated by commas: the worker connects to one and
   * moves to the next when it cannot reach it. "grpcs://HOST:PORT" asks for TLS and
   * "grpc://HOST:PORT" for plaintext, whatever `tls` says. @default "127.0.0.1:7070"
   */
  coordinator?: string;
  /**
   * true: TLS (--tls); false: plaintext even to another machine (--insecure). @default TLS,
   * except plaintext to a loopback address when no CA, certificate or server name is given
   */
  tls?: boolean;
  /** PEM file of the CA certificates to trust instead of the system's. @default the system's */
  caFile?: string;
  /** PEM file of this worker's client certificate, for a coordinator that requires mutual TLS. @default none */
  certFile?: string;
  /** PEM file of that certificate's private key. @default none */
  keyFile?: string;
  /** Name the coordinator's certificate must carry, when it differs from the address's host. @default the host */
  tlsServerName?: string;
  /** Bearer token the coordinator enrolled this worker with. @default none */
  token?: string;
  /** Human name shown in fleet views. @default the host name */
  name?: string;
  /** Where the worker keeps its id and blob cache. @default "$XDG_STATE_HOME/mmgrid/worker" */
  stateDir?: string;
  /** Task kinds this worker may run. @default every built-in kind */
  kinds?: readonly string[];
  /** Tasks of each kind run at once. @default per kind, from the CPU count */
  slots?: Readonly<Record<string, number>>;
  /** On SIGTERM, how long running tasks may take before they are handed back. @default 30 s */
  drainGraceMs?: number;
  /** GPU memory the grid may use, in bytes. @default all the GPUs' memory */
  vramBudgetBytes?: number;
  /** Offer no GPU, even when one is present. @default false */
  cpuOnly?: boolean;
  /** The nvidia-smi to ask about GPUs. @default "nvidia-smi" from PATH */
  nvidiaSmi?: string;
  /** First and largest pause between reconnection attempts. @default 500 ms and 15 s */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /**
   * "HOST:PORT" for the worker's `/metrics` and `/healthz` (plain HTTP), or "off". Port 0 lets
   * the system choose. Local by default: it is for the machine's owner.
   * @default "127.0.0.1:9465"
   */
  metricsListen?: string;
}

export interface ResolvedWorkerOptions {
  /** Coordinator addresses, tried in turn (as given: a scheme, if any, is kept). */
  readonly coordinators: readonly string[];
  /** How to reach them: TLS or not, and the TLS files (read at each connection). */
  readonly connection: WorkerConnectionSettings;
  readonly token: string;
  readonly name: string;
  readonly stateDir: string;
  readonly kinds: readonly string[];
  readonly slots: Readonly<Record<string, number>>;
  readonly drainGraceMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** Undefined: all the GPUs' memory. */
  readonly vramBudgetBytes: number | undefined;
  readonly cpuOnly: boolean;
  readonly nvidiaSmi: string;
  /** Where to serve metrics; undefined: not at all ("off"). */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined;
}

/** The TLS settings of a worker's connections, in @mmgrid/client's ConnectionOptions terms. */
export interface WorkerConnectionSettings {
  readonly tls?: boolean;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly serverName?: string;
  /** How messages name these settings (the worker's command line passes its flags). */
  readonly settingNames?: SettingNames;
}

/** Where a worker serves its metrics unless told otherwise. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9465';

export function defaultStateDir(): string {
  const base = process.env['XDG_STATE_HOME'] ?? path.join(homedir(), '.local', 'state');
  return path.join(base, 'mmgrid', 'worker');
}

/** Default slots: OCR is the heaviest built-in kind, so it gets one slot per two cores. */
export function defaultSlots(kind: string, cpuCount = cpus().length): number {
  switch (kind) {
    case 'image.ocr':
      return Math.max(1, Math.floor(cpuCount / 2));
    case 'audio.analyze':
    case 'image.inspect':
      return Math.max(1, cpuCount);
    case 'audio.transcribe':
    case 'text.generate':
    case 'image.caption':
    case 'fusion.llm':
    case 'image.classify':
      // A model server (often on one GPU) does the work: two keep it busy without queueing
      // many requests inside it.
      return 2;
    default:
      // A command an owner set up (exec.NAME) is often a whole GPU job: one at a time.
      if (kind.startsWith('exec.')) return 1;
      return Math.max(2, cpuCount * 2);
  }
}

export function resolveWorkerOptions(options: WorkerOptions, available: readonly string[], hostName: string): ResolvedWorkerOptions {
  const coordinators = (options.coordinator ?? '127.0.0.1:7070').split(',').map((c) => c.trim()).filter(Boolean);
  if (coordinators.length === 0) throw new InvalidOptionError('coordinator', 'HOST:PORT, or several separated by commas', options.coordinator);
  for (const c of coordinators) parseCoordinatorAddress('coordinator', c);
  const given = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';
  const connection: WorkerConnectionSettings = {
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(given(options.caFile) ? { caFile: options.caFile } : {}),
    ...(given(options.certFile) ? { certFile: options.certFile } : {}),
    ...(given(options.keyFile) ? { keyFile: options.keyFile } : {}),
    ...(given(options.tlsServerName) ? { serverName: options.tlsServerName } : {}),
  };
  const kinds = options.kinds ?? available;
  for (const kind of kinds) {
    if (!TASK_KIND_PATTERN.test(kind) || !available.includes(kind)) {
      throw new InvalidOptionError('kinds', `a list of kinds this worker can run (${available.join(', ')})`, kind);
    }
  }
  if (kinds.length === 0) throw new InvalidOptionError('kinds', `at least one of ${available.join(', ')}`, kinds);
  const slots: Record<string, number> = {};
  for (const kind of kinds) slots[kind] = intOption(`slots.${kind}`, options.slots?.[kind] ?? defaultSlots(kind), 1, 1024);
  for (const kind of Object.keys(options.slots ?? {})) {
    if (!kinds.includes(kind)) throw new InvalidOptionError(`slots.${kind}`, `slots for a kind this worker runs (${kinds.join(', ')})`, kind);
  }
  const reconnectInitialMs = durationOption('reconnectInitialMs', options.reconnectInitialMs ?? 500, 10, 60_000);
  const budget = options.vramBudgetBytes;
  if (budget !== undefined && (!Number.isFinite(budget) || budget < 0)) throw new InvalidOptionError('vramBudgetBytes', 'a number of bytes, 0 or more', budget);
  return {
    coordinators,
    connection,
    token: options.token ?? '',
    name: nonEmptyOption('name', options.name ?? hostName),
    stateDir: nonEmptyOption('stateDir', options.stateDir ?? defaultStateDir()),
    kinds,
    slots,
    drainGraceMs: durationOption('drainGraceMs', options.drainGraceMs ?? 30_000, 0, 3_600_000),
    reconnectInitialMs,
    reconnectMaxMs: durationOption('reconnectMaxMs', options.reconnectMaxMs ?? 15_000, reconnectInitialMs, 600_000),
    vramBudgetBytes: budget,
    cpuOnly: options.cpuOnly ?? false,
    nvidiaSmi: nonEmptyOption('nvidiaSmi', options.nvidiaSmi ?? 'nvidia-smi'),
    metricsListen: resolveMetricsListen(options.metricsListen ?? DEFAULT_METRICS_LISTEN),
  };
}

function resolveMetricsListen(value: string): { host: string; port: number } | undefined {
  if (value.trim().toLowerCase() === 'off') return undefined;
  try {
    return parseHostPort('metricsListen', value);
  } catch (err) {
    if (err instanceof InvalidOptionError) throw new InvalidOptionError('metricsListen', 'HOST:PORT (for example 127.0.0.1:9465), or "off"', value);
    throw err;
  }
}

const UNITS: Readonly<Record<string, number>> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 };

/** Parses "12GiB", "512 MiB", "8000000000" into bytes; undefined when it is none of those. */
export function parseBytes(value: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(value);
  if (!match?.[1]) return undefined;
  const unit = UNITS[(match[2] ?? 'b').toLowerCase()];
  return unit === undefined ? undefined : Math.round(Number(match[1]) * unit);
}
