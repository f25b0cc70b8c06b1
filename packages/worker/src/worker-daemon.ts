import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { arch, cpus, hostname, platform, totalmem } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { BlobClient, resolveConnection, toClientError, type ResolvedConnection } from '@mmgrid/client';
import { retryDelayMs, type RetryPolicy } from '@mmgrid/core';
import {
  WorkerServiceClient,
  type CoordinatorMessage,
  type HostInfo,
  type Lease,
  type TaskAssignment,
  type Welcome,
  WorkerMessage,
} from '@mmgrid/proto';
import type { Logger } from 'pino';
import type { TaskHandler } from './backends/backend.js';
import { BlobCache, type BlobClientLike } from './blob-cache.js';
import type { TaskFailureCode } from './errors.js';
import { probeNvidiaGpus, toGpuInfo, toGpuStats, type NvidiaGpu } from './gpu/nvidia-smi.js';
import { WorkerMetrics } from './metrics.js';
import type { WorkerHealth } from './metrics-server.js';
import { TaskRunner, type StopReason } from './task-runner.js';
import { loadWorkerId } from './worker-id.js';
import type { ResolvedWorkerOptions } from './worker-options.js';

const require = createRequire(import.meta.url);
const VERSION = (require('../package.json') as { version: string }).version;
const WELCOME_TIMEOUT_MS = 10_000;
const ACK_WAIT_MS = 5_000;
/** GPU statistics are refreshed on every this many heartbeats. */
const GPU_STATS_EVERY = 2;
/** An unacknowledged result is sent again after this long. */
const RESEND_AFTER_MS = 10_000;
/** The largest message gRPC sends when the connection does not say (its default, 8 MiB). */
const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** The longest failure message sent (a longer one is cut). */
const MAX_FAILURE_MESSAGE_CHARS = 16 * 1024;

interface RunningTask {
  readonly assignment: TaskAssignment;
  readonly lease: Lease;
  readonly stop: AbortController;
}

export interface WorkerDaemonEvents {
  connected: [welcome: Welcome];
  disconnected: [reason: string];
  'task-started': [assignment: TaskAssignment];
  'task-finished': [assignment: TaskAssignment, ok: boolean];
}

/**
 * The worker daemon: one outbound Connect stream to a coordinator (so it works behind NAT),
 * hello with what it offers, heartbeats that renew its leases, tasks run through handlers.
 * A dropped stream is re-opened with jittered backoff; tasks keep running meanwhile and
 * their results are delivered after the reconnect (the coordinator adopts their leases).
 */
export class WorkerDaemon extends EventEmitter<WorkerDaemonEvents> {
  private conn: ResolvedConnection;
  private blobs: BlobClient;
  private readonly runner: TaskRunner;
  private readonly handlers: readonly TaskHandler[];
  /** Which of the coordinator addresses the worker uses now. */
  private coordinatorIndex = 0;
  private rotateNext = false;
  private gpus: readonly NvidiaGpu[] = [];
  private cudaVersion = '';
  private gpuNote = '';
  private readonly running = new Map<string, RunningTask>();
  /** Results and failures sent (or to send) and not yet acknowledged, by lease id. */
  private readonly unacked = new Map<string, { message: WorkerMessage; sentAt: number; task: TaskIds }>();
  private call: ClientDuplexStream<WorkerMessage, CoordinatorMessage> | undefined;
  private client: WorkerServiceClient | undefined;
  private welcomed = false;
  private draining = false;
  private stopped = false;
  private workerId = '';
  private loop: Promise<void> | undefined;
  private heartbeatSeq = 0;
  private wakeLoop: (() => void) | undefined;
  /** The largest message the coordinator said it takes (0: it did not say). */
  private announcedMaxBytes = 0;
  /** Why the worker is not connected now (shown by /healthz). */
  private notConnectedReason = 'not started';
  /** The last stream ended because the coordinator refused this worker's token. */
  private refused: 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | undefined;
  /** This worker's Prometheus metrics (served by the metrics server, when there is one). */
  readonly metrics: WorkerMetrics;

  constructor(
    private readonly options: ResolvedWorkerOptions,
    handlers: readonly TaskHandler[],
    private readonly logger: Logger,
    metrics?: WorkerMetrics,
  ) {
    super();
    this.metrics = metrics ?? new WorkerMetrics({ processMetrics: false });
    this.conn = this.connectionTo(0);
    this.blobs = new BlobClient(this.conn);
    this.handlers = handlers.filter((h) => options.kinds.includes(h.kind));
    this.metrics.setSlots(Object.fromEntries(options.kinds.map((kind) => [kind, options.slots[kind] ?? 1])));
    // Blob transfers always go to the coordinator the worker is connected to. Every transfer
    // passes through here, so this is where its bytes are counted.
    const blobs: BlobClientLike = {
      download: async (sha, file, opts) => {
        const got = await this.blobs.download(sha, file, opts);
        this.metrics.blobDownloaded(got.size);
        return got;
      },
      uploadBytes: async (bytes, opts) => {
        const sent = await this.blobs.uploadBytes(bytes, opts);
        if (!sent.skipped) this.metrics.blobUploaded(bytes.byteLength);
        return sent;
      },
    };
    this.runner = new TaskRunner(this.handlers, new BlobCache(path.join(options.stateDir, 'blobs'), blobs, {
        metrics: this.metrics,
        onCorrupt: (sha256, why) => this.logger.warn({ sha256 }, `blob ${sha256} in the cache is damaged (${why}); removed, fetching it again`),
      }), blobs, this.metrics);
  }

  /** Healthy while connected to a coordinator (welcomed); otherwise why not. */
  get health(): WorkerHealth {
    if (this.welcomed) return { ok: true, reason: `connected to the coordinator at ${this.conn.address}` };
    return { ok: false, reason: `not connected to a coordinator: ${this.notConnectedReason}` };
  }

  private connectionTo(index: number): ResolvedConnection {
    const address = this.options.coordinators[index % this.options.coordinators.length] ?? '127.0.0.1:7070';
    return resolveConnection({ address, token: this.options.token, ...this.options.connection });
  }

  /** Moves to the next coordinator address (after one could not be reached or went away). */
  private rotate(): void {
    if (this.options.coordinators.length < 2) return;
    this.coordinatorIndex = (this.coordinatorIndex + 1) % this.options.coordinators.length;
    let next: ResolvedConnection;
    try {
      next = this.connectionTo(this.coordinatorIndex);
    } catch (err) {
      // A TLS file went bad since the start (they are read again for each address): stay put.
      this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'cannot connect to the next coordinator');
      return;
    }
    this.blobs.close();
    this.conn = next;
    this.blobs = new BlobClient(this.conn);
  }

  /** The GPUs the grid may use here, and why there are none when there are none. */
  get gpuSummary(): { gpus: readonly NvidiaGpu[]; note: string; vramBudgetBytes: number } {
    return { gpus: this.gpus, note: this.gpuNote, vramBudgetBytes: this.vramBudget() };
  }

  private vramBudget(): number {
    if (this.gpus.length === 0) return 0;
    const total = this.gpus.reduce((sum, g) => sum + (Number.isFinite(g.memoryTotalBytes) ? g.memoryTotalBytes : 0), 0);
    return Math.min(total, this.options.vramBudgetBytes ?? total);
  }

  private async probeGpus(): Promise<void> {
    if (this.options.cpuOnly) {
      this.gpus = [];
      this.gpuNote = 'GPUs ignored (--cpu-only)';
      return;
    }
    const probe = await probeNvidiaGpus(this.options.nvidiaSmi);
    if (probe.ok) {
      this.gpus = probe.gpus;
      this.cudaVersion = probe.cudaVersion;
      this.gpuNote = probe.gpus.length === 0 ? 'nvidia-smi lists no GPU' : '';
    } else {
      this.gpus = [];
      this.gpuNote = probe.reason;
    }
  }

  get id(): string {
    return this.workerId;
  }

  /** Starts connecting (and reconnecting) in the background. */
  async start(): Promise<void> {
    this.workerId = await loadWorkerId(this.options.stateDir);
    await this.probeGpus();
    this.notConnectedReason = `connecting to ${this.conn.address}`;
    this.loop = this.connectLoop();
  }

  private async connectLoop(): Promise<void> {
    const policy: RetryPolicy = {
      maxAttempts: Number.MAX_SAFE_INTEGER,
      initialDelayMs: this.options.reconnectInitialMs,
      maxDelayMs: this.options.reconnectMaxMs,
      multiplier: 2,
      jitter: 0.3,
    };
    let attempt = 0;
    while (!this.stopped) {
      let reason: string;
      this.refused = undefined;
      try {
        reason = await this.session();
      } catch (err) {
        reason = toClientError(err, this.conn).message;
      }
      if (this.welcomed) {
        attempt = 0;
        this.metrics.setConnected(false);
        if (!this.stopped) this.metrics.connectionLost();
      }
      this.notConnectedReason = this.stopped ? 'the worker is stopping' : reason;
      if (!this.welcomed || this.rotateNext) this.rotate();
      this.rotateNext = false;
      this.welcomed = false;
      this.emit('disconnected', reason);
      if (this.stopped) break;
      attempt += 1;
      // A refused token will not work sooner for asking often: wait the longest pause.
      const wait = this.refused ? retryDelayMs(policy, Number.MAX_SAFE_INTEGER, Math.random) : retryDelayMs(policy, attempt, Math.random);
      if (this.refused) {
        this.logger.error(
          { code: this.refused, coordinator: this.conn.address },
          `the coordinator refused this worker's token: ${reason}. Check --token (MMGRID_TOKEN): it needs a worker token (an admin makes one with: mmgrid token create --role worker); retrying in ${(wait / 1000).toFixed(1)} s`,
        );
      } else {
        this.logger.warn(`${reason}; retrying in ${(wait / 1000).toFixed(1)} s`);
      }
      await new Promise<void>((resolve) => {
        this.wakeLoop = resolve;
        void delay(wait).then(resolve);
      });
      this.wakeLoop = undefined;
    }
  }

  private hostInfo(): HostInfo {
    return { hostname: hostname(), os: platform(), arch: arch(), cpus: cpus().length, memoryBytes: totalmem(), nodeVersion: process.version };
  }

  /** Leases the coordinator must keep: running tasks and results not yet acknowledged. */
  private heldLeases(): Lease[] {
    const leases = new Map<string, Lease>();
    for (const [id, task] of this.running) leases.set(id, task.lease);
    for (const [id, { message }] of this.unacked) {
      const lease = leaseOfMessage(message);
      if (lease) leases.set(id, lease);
    }
    return [...leases.values()];
  }

  /** One connection, from hello to the stream's end. Resolves with why it ended. */
  private session(): Promise<string> {
    return new Promise((resolve) => {
      this.client = new WorkerServiceClient(this.conn.address, this.conn.credentials, this.conn.channelOptions);
      const call = this.client.connect(this.conn.metadata());
      this.call = call;
      let heartbeat: NodeJS.Timeout | undefined;
      let ended = false;
      const end = (reason: string): void => {
        if (ended) return;
        ended = true;
        clearTimeout(welcomeTimer);
        if (heartbeat) clearInterval(heartbeat);
        this.call = undefined;
        call.removeAllListeners();
        call.on('error', () => undefined);
        call.cancel();
        this.client?.close();
        resolve(reason);
      };
      const welcomeTimer = setTimeout(() => end(`no welcome from ${this.conn.address} within ${WELCOME_TIMEOUT_MS / 1000} s`), WELCOME_TIMEOUT_MS);

      call.on('data', (message: CoordinatorMessage) => {
        const msg = message.msg;
        if (!msg) return;
        switch (msg.$case) {
          case 'welcome': {
            clearTimeout(welcomeTimer);
            this.welcomed = true;
            const welcome = msg.welcome;
            this.announcedMaxBytes = welcome.maxMessageBytes;
            for (const lost of welcome.lost) {
              this.logger.warn({ ...this.taskOfLease(lost.leaseId), lease: lost.leaseId, taskRef: lost.taskRef }, 'lease lost while disconnected; the task ran elsewhere and this work is discarded');
              this.forget(lost.leaseId, 'lost');
            }
            this.logger.info({ coordinator: welcome.coordinatorId, session: welcome.sessionId, address: this.conn.address }, 'connected to coordinator');
            this.metrics.setConnected(true);
            heartbeat = setInterval(() => this.sendHeartbeat(), Math.max(100, welcome.heartbeatIntervalMs));
            if (this.draining) this.send({ msg: { $case: 'draining', draining: { reason: 'the worker is shutting down' } } });
            for (const pending of this.unacked.values()) {
              // This coordinator may take less than the last one: never send what it refuses.
              const fitted = this.fitted(pending.message);
              if (fitted !== pending.message && fitted.msg?.$case === 'failure') {
                const failed = fitted.msg.failure;
                this.logger.warn({ ...pending.task, lease: failed.lease?.leaseId, code: failed.error?.code }, `task failed: ${failed.error?.message ?? ''}`);
              }
              pending.message = fitted;
              pending.sentAt = Date.now();
              this.send(pending.message);
            }
            this.emit('connected', welcome);
            return;
          }
          case 'assign':
            this.startTask(msg.assign);
            return;
          case 'cancel': {
            const lease = msg.cancel.lease;
            if (lease) {
              const task = this.running.get(lease.leaseId);
              this.logger.info(
                { ...this.taskOfLease(lease.leaseId), lease: lease.leaseId, reason: msg.cancel.reason },
                'task cancelled by the coordinator',
              );
              task?.stop.abort('cancelled' satisfies StopReason);
            }
            return;
          }
          case 'ack': {
            const lease = msg.ack.lease;
            if (!msg.ack.accepted) this.logger.warn({ ...this.taskOfLease(lease?.leaseId ?? ''), lease: lease?.leaseId, taskRef: lease?.taskRef, reason: msg.ack.reason }, 'late result discarded by the coordinator');
            if (lease) this.unacked.delete(lease.leaseId);
            return;
          }
          case 'drain':
            this.logger.info({ reason: msg.drain.reason }, 'coordinator asked to reconnect');
            // It is going away: try the next address first.
            this.rotateNext = true;
            end(`coordinator is going away (${msg.drain.reason})`);
            return;
        }
      });
      call.on('error', (err: Error) => {
        const e = toClientError(err, this.conn);
        if (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED') this.refused = e.code;
        end(e.message);
      });
      call.on('end', () => end(`coordinator at ${this.conn.address} closed the stream`));

      call.write({
        msg: {
          $case: 'hello',
          hello: {
            workerId: this.workerId,
            name: this.options.name,
            version: VERSION,
            host: this.hostInfo(),
            gpus: this.gpus.map((g) => toGpuInfo(g, this.cudaVersion)),
            kinds: this.options.kinds.map((kind) => ({ kind, slots: this.options.slots[kind] ?? 1, models: [...(this.handlers.find((h) => h.kind === kind)?.models ?? [])] })),
            warmModels: [...new Set(this.handlers.flatMap((h) => h.models ?? []))],
            vramBudgetBytes: this.vramBudget(),
            running: this.heldLeases(),
          },
        },
      });
    });
  }

  private send(message: WorkerMessage): boolean {
    const call = this.call;
    if (!call || !this.welcomed) return false;
    try {
      call.write(message);
      return true;
    } catch {
      return false;
    }
  }

  private sendHeartbeat(): void {
    // A result the coordinator could not commit yet (Redis was unreachable) is sent again.
    const now = Date.now();
    for (const pending of this.unacked.values()) {
      if (now - pending.sentAt >= RESEND_AFTER_MS) {
        pending.sentAt = now;
        this.send(pending.message);
      }
    }
    this.heartbeatSeq += 1;
    const seq = this.heartbeatSeq;
    const send = (): void => {
      this.send({ msg: { $case: 'heartbeat', heartbeat: { seq, gpus: this.gpus.map(toGpuStats), warmModels: [...new Set(this.handlers.flatMap((h) => h.models ?? []))], running: this.heldLeases() } } });
    };
    if (this.gpus.length === 0 || seq % GPU_STATS_EVERY !== 0) {
      send();
      return;
    }
    // GPU utilisation, memory, temperature and power travel with every few heartbeats.
    void probeNvidiaGpus(this.options.nvidiaSmi).then((probe) => {
      if (probe.ok && probe.gpus.length > 0) this.gpus = probe.gpus;
      send();
    });
  }

  /** The job and task a lease this worker holds is for (nothing for a lease it does not know), for log lines. */
  private taskOfLease(leaseId: string): Partial<TaskIds> {
    const running = this.running.get(leaseId);
    if (running) return taskIds(running.assignment);
    return this.unacked.get(leaseId)?.task ?? {};
  }

  private forget(leaseId: string, reason: StopReason): void {
    const task = this.running.get(leaseId);
    task?.stop.abort(reason);
    this.running.delete(leaseId);
    this.unacked.delete(leaseId);
    if (task) this.countBusy(task.assignment.kind);
  }

  /** Sets the busy-slots metric of `kind` from the tasks running now. */
  private countBusy(kind: string): void {
    let busy = 0;
    for (const task of this.running.values()) if (task.assignment.kind === kind) busy += 1;
    this.metrics.setBusySlots(kind, busy);
  }

  private startTask(assignment: TaskAssignment): void {
    const lease = assignment.lease;
    if (!lease) return;
    if (this.draining) {
      this.finish(assignment, lease, { msg: { $case: 'failure', failure: { lease, error: { code: 'WORKER_DRAINING', message: 'the worker is shutting down', retryable: true }, stats: undefined } } });
      return;
    }
    const task: RunningTask = { assignment, lease, stop: new AbortController() };
    this.running.set(lease.leaseId, task);
    this.countBusy(assignment.kind);
    this.emit('task-started', assignment);
    const log = this.logger.child(taskIds(assignment));
    log.debug({ attempt: assignment.attempt }, 'task started');
    let lastProgress = 0;
    void this.runner
      .run(assignment, task.stop.signal, (fraction, message) => {
        const now = Date.now();
        if (now - lastProgress < 250 && fraction < 1) return;
        lastProgress = now;
        this.send({ msg: { $case: 'progress', progress: { lease, fraction, message } } });
      })
      .then((outcome) => {
        if (!this.running.has(lease.leaseId)) return;
        // A result too large to send goes as a failure (see fitted).
        const sent = this.finish(
          assignment,
          lease,
          outcome.ok
            ? { msg: { $case: 'result', result: { lease, outputJson: outcome.outputJson, blobs: outcome.blobs, stats: outcome.stats } } }
            : { msg: { $case: 'failure', failure: { lease, error: outcome.error, stats: outcome.stats } } },
        );
        const failure = sent.msg?.$case === 'failure' ? sent.msg.failure : undefined;
        if (!failure) {
          log.info({ ms: outcome.stats.finishedAtMs - outcome.stats.startedAtMs }, 'task succeeded');
        } else {
          log.warn({ code: failure.error?.code, retryable: failure.error?.retryable }, `task failed: ${failure.error?.message ?? ''}`);
        }
        this.emit('task-finished', assignment, !failure);
      });
  }

  /** Sends a task's result or failure (until acknowledged); returns what was sent. */
  private finish(assignment: TaskAssignment, lease: Lease, message: WorkerMessage): WorkerMessage {
    this.running.delete(lease.leaseId);
    this.countBusy(assignment.kind);
    const fitted = this.fitted(message);
    this.unacked.set(lease.leaseId, { message: fitted, sentAt: Date.now(), task: taskIds(assignment) });
    this.send(fitted);
    return fitted;
  }

  /** The largest message this worker may send: its connection's limit, or the coordinator's if smaller. */
  get maxMessageBytes(): number {
    const own = this.conn.channelOptions['grpc.max_send_message_length'];
    return maxMessageBytesOf(typeof own === 'number' && own > 0 ? own : DEFAULT_MAX_MESSAGE_BYTES, this.announcedMaxBytes);
  }

  /**
   * `message`, or, when it is a result too large to send, a failure in its place. gRPC would
   * refuse the message and end the stream, and a result resent after every reconnect would
   * loop for ever.
   */
  private fitted(message: WorkerMessage): WorkerMessage {
    return fitResultMessage(message, this.maxMessageBytes);
  }

  /**
   * Stops taking tasks, lets running ones finish for up to the grace period, hands back the
   * rest (they go to other workers at once), waits for the coordinator to acknowledge, and
   * stops.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.logger.info({ running: this.running.size, graceMs: this.options.drainGraceMs }, 'draining');
    this.send({ msg: { $case: 'draining', draining: { reason: 'the worker is shutting down' } } });
    const deadline = Date.now() + this.options.drainGraceMs;
    while (this.running.size > 0 && Date.now() < deadline) await delay(Math.min(200, Math.max(1, deadline - Date.now())));
    for (const task of this.running.values()) task.stop.abort('draining' satisfies StopReason);
    const ackDeadline = Date.now() + ACK_WAIT_MS;
    while ((this.running.size > 0 || this.unacked.size > 0) && Date.now() < ackDeadline) await delay(50);
    await this.stop();
  }

  /** Stops at once: running tasks are abandoned (their leases lapse and they run elsewhere). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const task of this.running.values()) task.stop.abort('draining' satisfies StopReason);
    this.call?.end();
    this.call?.cancel();
    this.wakeLoop?.();
    await this.loop;
    await this.runner.close();
    this.blobs.close();
  }
}

/** The largest message to send: `own` (the connection's limit), or `announced` when set and smaller. */
export function maxMessageBytesOf(own: number, announced: number): number {
  return announced > 0 ? Math.min(own, announced) : own;
}

/** Bytes `message` takes on the wire (gRPC compares this with its limit). */
export function encodedSize(message: WorkerMessage): number {
  return WorkerMessage.encode(message).finish().byteLength;
}

/**
 * `message` when it fits in `maxBytes`; a result that does not becomes a failure of its task
 * (`OUTPUT_TOO_LARGE`, not retryable: the same task gives the same output), and a failure
 * whose message does not fit has its message cut. Other messages are returned as they are.
 */
export function fitResultMessage(message: WorkerMessage, maxBytes: number): WorkerMessage {
  const msg = message.msg;
  if (msg?.$case !== 'result' && msg?.$case !== 'failure') return message;
  const size = encodedSize(message);
  if (size <= maxBytes) return message;
  if (msg.$case === 'failure') {
    const error = msg.failure.error;
    if (!error) return message;
    return { msg: { $case: 'failure', failure: { ...msg.failure, error: { ...error, message: `${error.message.slice(0, MAX_FAILURE_MESSAGE_CHARS)}… (cut)` } } } };
  }
  const { lease, stats } = msg.result;
  const error = {
    code: 'OUTPUT_TOO_LARGE' satisfies TaskFailureCode,
    message:
      `the task's output is ${formatBytes(size)} (${size} bytes) as a message, over the ${formatBytes(maxBytes)} (${maxBytes} bytes) a message to the coordinator may take; ` +
      'a task should store large outputs as blobs (putBlob) and return their references',
    retryable: false,
  };
  return { msg: { $case: 'failure', failure: { lease, error, stats } } };
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / (1024 * 1024)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

function leaseOfMessage(message: WorkerMessage): Lease | undefined {
  const msg = message.msg;
  if (msg?.$case === 'result') return msg.result.lease;
  if (msg?.$case === 'failure') return msg.failure.lease;
  return undefined;
}

/** What every log line about a task carries. */
interface TaskIds {
  readonly jobId: string;
  readonly taskId: string;
  readonly kind: string;
}

function taskIds(assignment: TaskAssignment): TaskIds {
  return { jobId: assignment.jobId, taskId: assignment.taskId, kind: assignment.kind };
}
