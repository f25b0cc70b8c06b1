import { homedir, cpus } from 'node:os';
import path from 'node:path';
import { durationOption, intOption, InvalidOptionError, nonEmptyOption, parseHostPort, TASK_KIND_PATTERN } from '@mmgrid/core';

/** Options of a worker daemon. Every field is optional; see each default. */
export interface WorkerOptions {
  /** Coordinator "HOST:PORT". @default "127.0.0.1:7070" */
  coordinator?: string;
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
  /** First and largest pause between reconnection attempts. @default 500 ms and 15 s */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
}

export interface ResolvedWorkerOptions {
  readonly coordinator: string;
  readonly token: string;
  readonly name: string;
  readonly stateDir: string;
  readonly kinds: readonly string[];
  readonly slots: Readonly<Record<string, number>>;
  readonly drainGraceMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
}

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
    default:
      return Math.max(2, cpuCount * 2);
  }
}

export function resolveWorkerOptions(options: WorkerOptions, available: readonly string[], hostName: string): ResolvedWorkerOptions {
  const coordinator = options.coordinator ?? '127.0.0.1:7070';
  parseHostPort('coordinator', coordinator);
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
  return {
    coordinator,
    token: options.token ?? '',
    name: nonEmptyOption('name', options.name ?? hostName),
    stateDir: nonEmptyOption('stateDir', options.stateDir ?? defaultStateDir()),
    kinds,
    slots,
    drainGraceMs: durationOption('drainGraceMs', options.drainGraceMs ?? 30_000, 0, 3_600_000),
    reconnectInitialMs,
    reconnectMaxMs: durationOption('reconnectMaxMs', options.reconnectMaxMs ?? 15_000, reconnectInitialMs, 600_000),
  };
}
