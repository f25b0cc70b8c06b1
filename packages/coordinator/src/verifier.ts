import type { Redis } from 'ioredis';
import {
  checkKnownAnswer,
  findQuorum,
  NEW_TRUST,
  trustScore,
  trustStanding,
  validatorFor,
  type Candidate,
  type JsonValue,
  type TrustPolicy,
  type TrustRecord,
  type TrustStanding,
  type ValidatorSpec,
} from '@mmgrid/core';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Exclusion, WorkerRegistry } from './worker-registry.js';
import type { WorkerSession } from './worker-session.js';

/** Result verification as configured (see CoordinatorOptions.verify…). */
export interface VerificationSettings {
  /** Replication factor per kind (2 or more); kinds not named run once. */
  readonly replicas: ReadonlyMap<string, number>;
  readonly validators: Readonly<Record<string, ValidatorSpec>>;
  readonly maxReplicas: number;
  /** Share (0..1) of results with a known answer that are checked against it. */
  readonly canaryRate: number;
  readonly policy: TrustPolicy;
}

/** What becomes of a result under verification. */
export type Verdict =
  /** Commit `output`; `settle` (when set) is applied to the workers' records once it is committed. */
  | { readonly action: 'commit'; readonly output: JsonValue; readonly settle: Settlement | undefined }
  /** Kept as a candidate (or refused by a known-answer check): another worker runs the task. */
  | { readonly action: 'replicate'; readonly reason: string }
  /** Too many results disagree: the task fails with VERIFICATION_FAILED. */
  | { readonly action: 'fail'; readonly message: string };

export interface Settlement {
  readonly agreed: readonly Candidate[];
  readonly disagreed: readonly Candidate[];
}

/** A candidate as kept in Redis (field: the worker id). */
interface StoredCandidate {
  readonly owner: string;
  readonly output: JsonValue;
  readonly at: number;
  /** Its worker was replicated for low trust when it answered: the quorum grows by one. */
  readonly lowTrust: boolean;
  /** Refused by a known-answer check: never part of a quorum, but its worker is not asked again. */
  readonly refused: boolean;
}

interface TaskIds {
  readonly jobId: string;
  readonly taskId: string;
  readonly kind: string;
  readonly params: Readonly<Record<string, JsonValue>>;
}

/** Candidates are dropped this long after the last one was added (a task abandoned midway). */
const CANDIDATE_TTL_SECONDS = 7 * 24 * 3600;

/**
 * Result verification at commit time. A result of a kind with replication (or from a worker
 * of low trust) is kept as a candidate in Redis instead of being committed, and the task goes
 * back to its queue for a worker of another owner; once enough candidates agree (by the
 * kind's validator) the agreed output is committed through the usual fenced commit, so a task
 * still commits at most once. Each settled task raises the trust of the workers that agreed
 * and lowers that of those that did not; a worker whose trust falls low enough is
 * quarantined (given no tasks) until an operator releases it.
 *
 * Only one lease of a task is current at a time (BullMQ's lock), so a task's candidates are
 * added one at a time; a crash between steps leaves the candidates in Redis, and the task's
 * next run carries on from them.
 */
export class Verifier {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly settings: VerificationSettings,
    private readonly registry: WorkerRegistry,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly now: () => number,
    /** Tells every replica that a worker's record changed (the worker may be connected to another). */
    private readonly announce: (workerId: string) => Promise<void>,
    private readonly random: () => number = Math.random,
  ) {}

  /** Reads a connecting worker's record, so a quarantined worker stays quarantined across reconnects. */
  async load(session: WorkerSession): Promise<void> {
    this.apply(session, await this.record(session.workerId));
  }

  async record(workerId: string): Promise<TrustRecord> {
    const raw = await this.redis.hgetall(this.keys.trust(workerId));
    return { agreed: Number(raw.agreed ?? 0), disagreed: Number(raw.disagreed ?? 0), quarantinedAt: Number(raw.quarantinedAt ?? 0) };
  }

  standing(record: TrustRecord): TrustStanding {
    return trustStanding(record, this.settings.policy);
  }

  private apply(session: WorkerSession, record: TrustRecord): void {
    const was = session.standing;
    session.trust = record;
    session.standing = this.standing(record);
    if (was !== session.standing) {
      // Quarantine frees (or takes away) slots as far as placement is concerned.
      for (const kind of session.slots.keys()) this.registry.notify(kind);
    }
  }

  /** The workers and owners that already answered the task (undefined when none). */
  async exclusion(jobId: string, taskId: string): Promise<Exclusion | undefined> {
    const raw = await this.redis.hgetall(this.keys.candidates(jobId, taskId));
    const ids = Object.keys(raw);
    if (ids.length === 0) return undefined;
    const owners = new Set<string>();
    for (const json of Object.values(raw)) owners.add((JSON.parse(json) as StoredCandidate).owner);
    return { workerIds: new Set(ids), owners };
  }

  /** Decides what becomes of a worker's (schema-valid) output for a task. */
  async judge(session: WorkerSession, task: TaskIds, output: JsonValue): Promise<Verdict> {
    const key = this.keys.candidates(task.jobId, task.taskId);
    const lowTrust = session.standing === 'replicated';
    if (this.settings.canaryRate > 0 && this.random() < this.settings.canaryRate) {
      const right = checkKnownAnswer(task.kind, task.params, output);
      if (right !== undefined) {
        this.metrics.canaryChecked(task.kind, right ? 'passed' : 'failed');
        await this.adjust(session.workerId, right ? 'agreed' : 'disagreed');
        if (!right) {
          const refused: StoredCandidate = { owner: session.owner, output, at: this.now(), lowTrust, refused: true };
          await this.redis.multi().hset(key, session.workerId, JSON.stringify(refused)).expire(key, CANDIDATE_TTL_SECONDS).exec();
          this.logger.warn({ jobId: task.jobId, taskId: task.taskId, kind: task.kind, worker: session.name }, 'a result failed its known-answer check');
          return { action: 'replicate', reason: 'the result failed a known-answer check' };
        }
      }
    }
    const base = this.settings.replicas.get(task.kind) ?? 1;
    const raw = await this.redis.hgetall(key);
    if (base <= 1 && !lowTrust && Object.keys(raw).length === 0) return { action: 'commit', output, settle: undefined };

    const mine: StoredCandidate = { owner: session.owner, output, at: this.now(), lowTrust, refused: false };
    await this.redis.multi().hset(key, session.workerId, JSON.stringify(mine)).expire(key, CANDIDATE_TTL_SECONDS).exec();
    const stored = new Map<string, StoredCandidate>(Object.entries(raw).map(([id, json]) => [id, JSON.parse(json) as StoredCandidate]));
    stored.set(session.workerId, mine);
    const counted = [...stored].filter(([, c]) => !c.refused);
    // A low-trust worker among them asks for one more agreeing result (at least two).
    const quorum = counted.some(([, c]) => c.lowTrust) ? Math.max(2, base + 1) : base;
    const candidates: Candidate[] = counted.map(([workerId, c]) => ({ workerId, owner: c.owner, output: c.output }));
    const found = findQuorum(candidates, validatorFor(task.kind, this.settings.validators), quorum);
    if (found) {
      // The output committed is this result's when it is among the agreeing ones.
      const own = found.agreed.find((c) => c.workerId === session.workerId);
      return { action: 'commit', output: own ? own.output : found.output, settle: { agreed: found.agreed, disagreed: found.disagreed } };
    }
    if (stored.size >= this.settings.maxReplicas) {
      const spec = validatorFor(task.kind, this.settings.validators);
      const largest = findQuorum(candidates, spec, 1);
      const owners = new Set(largest?.agreed.map((c) => c.owner)).size;
      const message =
        largest && largest.agreed.length >= quorum
          ? `${largest.agreed.length} of ${stored.size} results agree, but they come from ${owners} owner${owners === 1 ? '' : 's'} and a quorum needs ${quorum} different owners (workers connected with different tokens); the task's output cannot be trusted`
          : `results of ${stored.size} workers did not reach a quorum of ${quorum} agreeing (validator ${spec.type}); the task's output cannot be trusted`;
      return { action: 'fail', message };
    }
    this.metrics.verificationReplica(task.kind);
    return { action: 'replicate', reason: counted.length < quorum ? `${counted.length} of ${quorum} agreeing results so far` : 'the results disagree' };
  }

  /** The validators in force (for comparing a canary's output with its known answer). */
  get validators(): Readonly<Record<string, ValidatorSpec>> {
    return this.settings.validators;
  }

  /** The result of a canary (canaries.ts) was checked: counts it and adjusts the worker's trust. */
  async canaryChecked(workerId: string, kind: string, right: boolean): Promise<void> {
    this.metrics.canaryChecked(kind, right ? 'passed' : 'failed');
    await this.adjust(workerId, right ? 'agreed' : 'disagreed');
  }

  /** After the agreed output was committed: updates the workers' records and drops the candidates. */
  async settle(task: TaskIds, settlement: Settlement): Promise<void> {
    for (const c of settlement.agreed) {
      this.metrics.verificationVerdict(task.kind, 'agreed');
      await this.adjust(c.workerId, 'agreed');
    }
    for (const c of settlement.disagreed) {
      this.metrics.verificationVerdict(task.kind, 'disagreed');
      await this.adjust(c.workerId, 'disagreed');
    }
    await this.discard(task);
  }

  /** The task ended otherwise (failed verification, or its job ended): its candidates go. */
  async discard(task: Pick<TaskIds, 'jobId' | 'taskId'>): Promise<void> {
    await this.redis.del(this.keys.candidates(task.jobId, task.taskId));
  }

  /** Counts a verdict on a worker; quarantines it when its trust falls too low. */
  private async adjust(workerId: string, verdict: 'agreed' | 'disagreed'): Promise<void> {
    const key = this.keys.trust(workerId);
    await this.redis.hincrby(key, verdict, 1);
    const record = await this.record(workerId);
    if (record.quarantinedAt === 0 && this.standing(record) === 'quarantined') {
      // HSETNX: of the calls racing to quarantine the same worker (verdicts settled at once,
      // here or on other replicas), the one that sets the time counts, logs and announces it.
      if ((await this.redis.hsetnx(key, 'quarantinedAt', String(this.now()))) === 1) {
        this.metrics.workerQuarantined();
        this.logger.warn({ workerId, agreed: record.agreed, disagreed: record.disagreed, trust: trustScore(record) }, 'worker quarantined: too many of its results disagreed with other workers');
        await this.announce(workerId).catch((err: unknown) => this.logger.warn({ workerId, err: String(err) }, 'could not tell the other replicas of a quarantine'));
      }
    }
    const latest = record.quarantinedAt === 0 && this.standing(record) === 'quarantined' ? { ...record, quarantinedAt: this.now() } : record;
    for (const session of this.registry.byWorkerId(workerId)) this.apply(session, latest);
  }

  /** Lifts a worker's quarantine and clears its record (an operator's decision). */
  async release(workerId: string): Promise<void> {
    await this.redis.del(this.keys.trust(workerId));
    for (const session of this.registry.byWorkerId(workerId)) this.apply(session, NEW_TRUST);
  }
}
