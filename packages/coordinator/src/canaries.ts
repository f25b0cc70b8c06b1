import type { Redis } from 'ioredis';
import { ulid } from 'ulid';
import {
  DEFAULT_TENANT,
  isBuiltinWorkerKind,
  NO_REQUIREMENTS,
  outputsAgree,
  parseTaskOutput,
  taskKindInfo,
  taskQueueName,
  textStats,
  validatorFor,
  type JsonObject,
  type JsonValue,
} from '@mmgrid/core';
import type { Lease, TaskAssignment, TaskFailure, TaskResult } from '@mmgrid/proto';
import type { Keys } from './keys.js';
import { grantLease, leaseToProto, taskRefOf, bullJobIdOf } from './lease.js';
import type { Logger } from './logger.js';
import type { Verifier } from './verifier.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { WorkerSession } from './worker-session.js';

/** Kinds a canary can be made of: the coordinator computes their right output itself. */
export const CANARY_KINDS = ['text.stats', 'selftest.sleep'] as const;
export type CanaryKind = (typeof CANARY_KINDS)[number];

/** A synthetic task: what the worker is given, and the output it must answer. */
export interface CanaryTask {
  readonly kind: CanaryKind;
  readonly params: JsonObject;
  /** Inline text inputs, by name. */
  readonly texts: Readonly<Record<string, string>>;
  readonly expected: JsonValue;
}

const WORDS = [
  'the', 'a', 'grid', 'river', 'stone', 'light', 'market', 'winter', 'signal', 'harbour', 'garden', 'paper', 'engine', 'morning',
  'quiet', 'north', 'copper', 'window', 'letter', 'field', 'of', 'and', 'to', 'in', 'was', 'is', 'with', 'under', 'after', 'before',
  'report', 'meeting', 'train', 'bridge', 'summer', 'orange', 'silver', 'forest', 'cloud', 'station', 'number', 'table', 'open',
  'closed', 'small', 'large', 'early', 'late', 'seven', 'twelve', 'old', 'new', 'road', 'city', 'village', 'music', 'water',
] as const;
const TEXT_NAMES = ['text', 'notes.txt', 'input.txt', 'document', 'body', 'message.txt'] as const;

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)] as T;
}

function between(min: number, max: number, random: () => number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A text of random sentences, of varying length and shape, so that it is not recognisable. */
export function canaryText(random: () => number): string {
  const sentences: string[] = [];
  const count = between(1, 24, random);
  for (let i = 0; i < count; i += 1) {
    const words = Array.from({ length: between(3, 18, random) }, () => pick(WORDS, random) as string);
    if (random() < 0.2) words.push(String(between(1, 2_000, random)));
    const first = words[0] ?? 'the';
    words[0] = first.charAt(0).toUpperCase() + first.slice(1);
    sentences.push(`${words.join(' ')}${pick(['.', '.', '.', '!', '?'], random)}`);
  }
  let text = '';
  for (const sentence of sentences) text += text === '' ? sentence : `${random() < 0.25 ? '\n' : ' '}${sentence}`;
  return random() < 0.5 ? `${text}\n` : text;
}

/** Makes a canary of `kind` with `random`. */
export function makeCanary(kind: CanaryKind, random: () => number): CanaryTask {
  if (kind === 'text.stats') {
    const text = canaryText(random);
    return { kind, params: { source: 'input' }, texts: { [pick(TEXT_NAMES, random)]: text }, expected: textStats(text, 'input') };
  }
  const index = between(0, 199, random);
  const ms = between(5, 200, random);
  return { kind, params: { ms, index }, texts: {}, expected: { sleptMs: ms, attempt: 1, index } };
}

export interface CanaryDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly registry: WorkerRegistry;
  readonly verifier: Verifier;
  readonly logger: Logger;
  readonly now: () => number;
  /** Chance (0..1) that a worker with a free slot of a canary kind is sent a canary on a heartbeat. */
  readonly rate: number;
  /** A canary not answered within its kind's timeout plus this is dropped. */
  readonly leaseMs: number;
  readonly random?: () => number;
}

/**
 * Canary tasks: synthetic tasks of a kind whose output the coordinator computes itself
 * (CANARY_KINDS), sent to one worker as an ordinary assignment (a lease from the grid's
 * fencing counter, a ULID job id, the task ref of a real queue of the kind), so the worker
 * cannot tell them from real tasks. On a worker's heartbeat, with probability `rate`, a
 * worker that is not quarantined, holds no canary and has a free slot of a canary kind is
 * sent one. Its answer is checked against the known one: right counts as an agreement,
 * wrong as a disagreement (so a liar is quarantined even for kinds that are not replicated).
 *
 * A canary lives only in this replica's memory, on the worker's session: it is in no queue
 * and no job (no tenant sees it, no quota counts it). When the worker disconnects, or does
 * not answer in time, the canary is dropped; it never runs elsewhere.
 */
export class Canaries {
  private readonly random: () => number;

  constructor(private readonly deps: CanaryDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** Whether `ref` is the lease of the canary this worker runs. */
  owns(session: WorkerSession, ref: Lease | undefined): boolean {
    const run = session.canary;
    return run !== undefined && ref !== undefined && ref.leaseId === run.leaseId && ref.fencingToken === run.fencingToken;
  }

  /** On a heartbeat: drops an overdue canary, or perhaps sends a new one. */
  async tick(session: WorkerSession): Promise<void> {
    const { registry, now, logger } = this.deps;
    const running = session.canary;
    if (running) {
      if (now() < running.deadline) return;
      this.drop(session);
      logger.info({ worker: session.name, workerId: session.workerId, kind: running.kind }, 'a canary was not answered in time: dropped');
      return;
    }
    // Only an idle worker gets one, and never a slot that real work waits for.
    if (this.deps.rate <= 0 || session.closed || session.draining || session.standing === 'quarantined' || session.leases.size > 0) return;
    if (this.random() >= this.deps.rate) return;
    const kinds = CANARY_KINDS.filter((k) => {
      const slot = session.slots.get(k);
      return slot !== undefined && slot.busy < slot.slots && !registry.hasWaiters(k);
    });
    if (kinds.length === 0) return;
    const kind = pick(kinds, this.random);
    if (!registry.take(session, kind)) return;
    let sent = false;
    try {
      sent = await this.send(session, kind);
    } finally {
      if (!sent) {
        session.canary = undefined;
        registry.release(session, kind);
      }
    }
  }

  private async send(session: WorkerSession, kind: CanaryKind): Promise<boolean> {
    const { redis, keys, now, leaseMs } = this.deps;
    const task = makeCanary(kind, this.random);
    const grant = await grantLease(redis, keys);
    if (session.closed) return false;
    const timeoutMs = taskKindInfo(kind)?.timeoutMs ?? 60_000;
    const queue = session.recentQueues.get(kind) ?? taskQueueName(kind, NO_REQUIREMENTS, DEFAULT_TENANT);
    const jobId = ulid(now());
    const taskRef = taskRefOf(queue, bullJobIdOf(jobId, 't1'));
    const startedAt = now();
    session.canary = { leaseId: grant.leaseId, fencingToken: grant.fencingToken, taskRef, kind, expected: task.expected, startedAt, deadline: startedAt + timeoutMs + leaseMs };
    const assignment: TaskAssignment = {
      lease: leaseToProto(grant, taskRef, leaseMs),
      jobId,
      taskId: 't1',
      kind,
      paramsJson: JSON.stringify(task.params),
      blobs: [],
      texts: { ...task.texts },
      upstream: [],
      requirements: { ...NO_REQUIREMENTS },
      attempt: 1,
      timeoutMs,
      gpuUuid: '',
    };
    if (!session.send({ msg: { $case: 'assign', assign: assignment } })) return false;
    this.deps.logger.debug({ worker: session.name, workerId: session.workerId, kind }, 'canary sent');
    return true;
  }

  /** The canary's result: checked against the known answer, and acknowledged like any result. */
  async complete(session: WorkerSession, result: TaskResult): Promise<void> {
    const run = session.canary;
    if (!run) return;
    this.drop(session, false);
    let right: boolean;
    try {
      const output = isBuiltinWorkerKind(run.kind) ? parseTaskOutput(run.kind, result.outputJson) : (JSON.parse(result.outputJson) as JsonValue);
      right = outputsAgree(validatorFor(run.kind, this.deps.verifier.validators), run.expected, output);
    } catch {
      // An output that is not even valid is a wrong answer.
      right = false;
    }
    if (!right) this.deps.logger.warn({ worker: session.name, workerId: session.workerId, kind: run.kind }, 'a canary was answered wrongly');
    session.send({ msg: { $case: 'ack', ack: { lease: result.lease, accepted: true, reason: '' } } });
    await this.deps.verifier.canaryChecked(session.workerId, run.kind, right);
  }

  /** The worker reports the canary failed: it is dropped, without a verdict (a failure is not a lie). */
  fail(session: WorkerSession, failure: TaskFailure): void {
    this.drop(session, false);
    session.send({ msg: { $case: 'ack', ack: { lease: failure.lease, accepted: true, reason: 'failed for good' } } });
  }

  /** Forgets the worker's canary and frees its slot (telling the worker to stop it, when `cancel`). */
  private drop(session: WorkerSession, cancel = true): void {
    const run = session.canary;
    if (!run) return;
    session.canary = undefined;
    this.deps.registry.release(session, run.kind);
    if (cancel) {
      session.send({ msg: { $case: 'cancel', cancel: { lease: { leaseId: run.leaseId, fencingToken: run.fencingToken, taskRef: run.taskRef, durationMs: this.deps.leaseMs }, reason: 'lease lost: the task went back to the queue' } } });
    }
  }
}
