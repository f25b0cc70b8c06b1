/**
 * A fleet of simulated workers in one process, for the fleet benchmark:
 *
 *   node --import tsx test/bench/fleet-sim.ts --coordinator HOST:PORT --workers 1000 [--prefix sim-0] [--streams-per-channel 1]
 *
 * Each simulated worker is what a real worker daemon is on the wire (see
 * packages/worker/src/worker-daemon.ts): its own Connect stream, a hello with a unique id and
 * name offering one CPU `selftest.sleep` slot, heartbeats at the interval the welcome states
 * (holding its running and unacknowledged leases), and `selftest.sleep` results
 * (`{ sleptMs, attempt, index }`) for the tasks it is assigned, kept until acknowledged.
 * It runs no task code beyond a timer, so one process carries a thousand of them.
 *
 * By default every worker has its own channel, so its own TCP connection and HTTP/2 session,
 * as real workers do; `--streams-per-channel N` groups N streams on a channel instead (fewer
 * sockets on both sides, but the coordinator then pays for N× fewer connections than a real
 * fleet would cost it).
 *
 * Started with an IPC channel (by the benchmark) it answers messages: `stats` (what it saw),
 * `probe` (given the coordinator's last-heartbeat time of each of its workers, how late each
 * heartbeat was recorded) and `stop`. Started from a terminal it prints its stats every 5 s.
 */
import { status as GrpcStatus, type ChannelOptions, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { resolveConnection } from '@mmgrid/client';
import { WorkerServiceClient, type CoordinatorMessage, type Lease, type TaskAssignment, type WorkerMessage } from '@mmgrid/proto';
import { cpus, hostname, totalmem } from 'node:os';
import { parseArgs } from 'node:util';

/** What the simulator reports to its parent on `stats`. */
export interface SimStats {
  readonly type: 'stats';
  readonly workers: number;
  /** Workers whose stream is open and welcomed now. */
  readonly connected: number;
  /** Streams that ended without the simulator asking (the coordinator dropped the worker), by reason. */
  readonly dropped: number;
  readonly dropReasons: Readonly<Record<string, number>>;
  readonly heartbeatsSent: number;
  readonly tasksDone: number;
  /** Result sent → ResultAck received, ms (since the last `stats`). */
  readonly ackMs: readonly number[];
  /** How late the simulator's own heartbeat timers fired, p99 ms (its event loop's health). */
  readonly timerLagP99Ms: number;
  readonly heartbeatIntervalMs: number;
}

/** Per-worker heartbeat lag as the coordinator recorded it, answered to `probe`. */
export interface SimProbe {
  readonly type: 'probe';
  /** Workers the coordinator's view lists (of this simulator's). */
  readonly seen: number;
  readonly missing: number;
  /**
   * For each seen worker: from sending a heartbeat to the coordinator recording it (its view's
   * lastHeartbeatMs), or, where a heartbeat sent earlier is still unrecorded, how long it has
   * waited: whichever is larger. Same clock on both sides (one machine).
   */
  readonly lagMs: readonly number[];
}

export type SimRequest = { type: 'stats' } | { type: 'probe'; lastHeartbeatMs: Readonly<Record<string, number>>; at: number } | { type: 'stop' };
export type SimReport = { type: 'ready'; connected: number; seconds: number } | SimStats | SimProbe | { type: 'error'; message: string };

const { values: flags } = parseArgs({
  options: {
    coordinator: { type: 'string', default: '127.0.0.1:7070' },
    workers: { type: 'string', default: '1000' },
    prefix: { type: 'string', default: `sim-${process.pid}` },
    'streams-per-channel': { type: 'string', default: '1' },
    /** Streams opening at once (waiting for their welcome). */
    ramp: { type: 'string', default: '100' },
  },
});
const WORKERS = Number(flags.workers);
const PER_CHANNEL = Math.max(1, Number(flags['streams-per-channel']));
const RAMP = Math.max(1, Number(flags.ramp));
const conn = resolveConnection({ address: flags.coordinator });
/** Sends kept per worker, to match with the coordinator's last-heartbeat time. */
const SENT_KEPT = 6;
const RECONNECT_MS = 1_000;

let heartbeatIntervalMs = 0;
let heartbeatsSent = 0;
let tasksDone = 0;
let dropped = 0;
const dropReasons: Record<string, number> = {};
let ackMs: number[] = [];
let timerLag: number[] = [];
let stopping = false;

interface Running {
  readonly lease: Lease;
  readonly timer: NodeJS.Timeout;
}

class SimWorker {
  private call: ClientDuplexStream<WorkerMessage, CoordinatorMessage> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private seq = 0;
  welcomed = false;
  /** When this worker's last heartbeats were sent (oldest first). */
  readonly sent: number[] = [];
  private readonly running = new Map<string, Running>();
  private readonly unacked = new Map<string, { message: WorkerMessage; lease: Lease; sentAt: number }>();

  constructor(
    readonly id: string,
    private readonly client: WorkerServiceClient,
  ) {}

  /** Opens the stream; resolves on the welcome (or when the stream ends before one). */
  open(): Promise<void> {
    return new Promise((resolve) => {
      const call = this.client.connect(conn.metadata());
      this.call = call;
      let ended = false;
      const end = (reason: string): void => {
        if (ended) return;
        ended = true;
        if (this.heartbeat) clearInterval(this.heartbeat);
        this.heartbeat = undefined;
        const wasWelcomed = this.welcomed;
        this.welcomed = false;
        this.call = undefined;
        call.removeAllListeners();
        call.on('error', () => undefined);
        call.cancel();
        for (const r of this.running.values()) clearTimeout(r.timer);
        this.running.clear();
        resolve();
        if (stopping) return;
        dropped += 1;
        dropReasons[reason] = (dropReasons[reason] ?? 0) + 1;
        // A real worker reconnects (with backoff) and hands back its unacknowledged results.
        if (wasWelcomed) setTimeout(() => void this.open(), RECONNECT_MS).unref();
      };
      call.on('data', (message: CoordinatorMessage) => {
        const msg = message.msg;
        switch (msg?.$case) {
          case 'welcome': {
            this.welcomed = true;
            heartbeatIntervalMs = msg.welcome.heartbeatIntervalMs;
            const every = Math.max(100, msg.welcome.heartbeatIntervalMs);
            let due = Date.now() + every;
            this.heartbeat = setInterval(() => {
              const now = Date.now();
              timerLag.push(now - due);
              due += every;
              this.sendHeartbeat(now);
            }, every);
            for (const pending of this.unacked.values()) {
              pending.sentAt = Date.now();
              call.write(pending.message);
            }
            resolve();
            return;
          }
          case 'assign':
            this.start(msg.assign);
            return;
          case 'cancel': {
            const lease = msg.cancel.lease;
            const task = lease ? this.running.get(lease.leaseId) : undefined;
            if (lease && task) {
              clearTimeout(task.timer);
              this.running.delete(lease.leaseId);
            }
            return;
          }
          case 'ack': {
            const lease = msg.ack.lease;
            const pending = lease ? this.unacked.get(lease.leaseId) : undefined;
            if (lease && pending) {
              ackMs.push(Date.now() - pending.sentAt);
              this.unacked.delete(lease.leaseId);
            }
            return;
          }
          case 'drain':
            end(`drain: ${msg.drain.reason}`);
            return;
          default:
            return;
        }
      });
      call.on('error', (err: ServiceError) => end(`${GrpcStatus[err.code] ?? err.code}: ${err.details}`));
      call.on('end', () => end('the coordinator closed the stream'));
      call.write({
        msg: {
          $case: 'hello',
          hello: {
            workerId: this.id,
            name: this.id,
            version: 'fleet-sim',
            host: { hostname: hostname(), os: 'linux', arch: process.arch, cpus: cpus().length, memoryBytes: totalmem(), nodeVersion: process.version },
            gpus: [],
            kinds: [{ kind: 'selftest.sleep', slots: 1, models: [] }],
            warmModels: [],
            vramBudgetBytes: 0,
            running: this.held(),
          },
        },
      });
    });
  }

  private held(): Lease[] {
    return [...[...this.running.values()].map((r) => r.lease), ...[...this.unacked.values()].map((u) => u.lease)];
  }

  private sendHeartbeat(now: number): void {
    if (!this.call || !this.welcomed) return;
    this.seq += 1;
    this.call.write({ msg: { $case: 'heartbeat', heartbeat: { seq: this.seq, gpus: [], warmModels: [], running: this.held() } } });
    heartbeatsSent += 1;
    this.sent.push(now);
    if (this.sent.length > SENT_KEPT) this.sent.shift();
  }

  /** Runs a `selftest.sleep` task: waits `ms`, then sends the result (or fails on purpose, as the real handler does). */
  private start(assignment: TaskAssignment): void {
    const lease = assignment.lease;
    if (!lease) return;
    const params = JSON.parse(assignment.paramsJson || '{}') as { ms?: number; failAttempts?: number; index?: number };
    const startedAtMs = Date.now();
    const timer = setTimeout(() => {
      if (!this.running.delete(lease.leaseId)) return;
      const finishedAtMs = Date.now();
      const stats = { startedAtMs, finishedAtMs, device: 'cpu', model: '' };
      const message: WorkerMessage =
        assignment.attempt <= (params.failAttempts ?? 0)
          ? { msg: { $case: 'failure', failure: { lease, error: { code: 'TASK_FAILED', message: 'failing on purpose', retryable: true }, stats } } }
          : { msg: { $case: 'result', result: { lease, outputJson: JSON.stringify({ sleptMs: finishedAtMs - startedAtMs, attempt: assignment.attempt, index: params.index ?? 0 }), blobs: [], stats } } };
      this.unacked.set(lease.leaseId, { message, lease, sentAt: finishedAtMs });
      tasksDone += 1;
      if (this.welcomed) this.call?.write(message);
    }, params.ms ?? 0);
    this.running.set(lease.leaseId, { lease, timer });
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const r of this.running.values()) clearTimeout(r.timer);
    this.call?.cancel();
  }

  /** See SimProbe.lagMs; undefined when nothing was sent yet. */
  lagAt(recordedAt: number, at: number): number | undefined {
    if (this.sent.length === 0) return undefined;
    let lag = 0;
    let matched = false;
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const sentAt = this.sent[i] ?? 0;
      if (sentAt <= recordedAt) {
        lag = Math.max(lag, recordedAt - sentAt);
        matched = true;
        break;
      }
      // Sent and not recorded yet (as of `at`): waiting at least this long.
      lag = Math.max(lag, at - sentAt);
    }
    if (!matched) lag = Math.max(lag, at - (this.sent[0] ?? at));
    return lag;
  }
}

function p99(xs: number[]): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)] ?? 0;
}

const clients: WorkerServiceClient[] = [];
const workers: SimWorker[] = [];
const channelOptions: ChannelOptions = {
  ...conn.channelOptions,
  // A channel of its own (and so a TCP connection of its own) per client: grpc-js otherwise
  // shares one connection among clients with the same target and options.
  'grpc.use_local_subchannel_pool': 1,
};
for (let i = 0; i < WORKERS; i++) {
  if (i % PER_CHANNEL === 0) clients.push(new WorkerServiceClient(conn.address, conn.credentials, channelOptions));
  const client = clients.at(-1);
  if (!client) throw new Error('no client');
  workers.push(new SimWorker(`${flags.prefix}-${String(i).padStart(5, '0')}`, client));
}

const report = (message: SimReport): void => {
  if (process.send) process.send(message);
  else process.stdout.write(`${JSON.stringify(message)}\n`);
};

function stats(): SimStats {
  const s: SimStats = {
    type: 'stats',
    workers: WORKERS,
    connected: workers.filter((w) => w.welcomed).length,
    dropped,
    dropReasons: { ...dropReasons },
    heartbeatsSent,
    tasksDone,
    ackMs,
    timerLagP99Ms: p99(timerLag),
    heartbeatIntervalMs,
  };
  ackMs = [];
  timerLag = [];
  return s;
}

function stop(): void {
  stopping = true;
  for (const w of workers) w.close();
  for (const c of clients) c.close();
  // Let the cancellations reach the coordinator, then go.
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('message', (request: SimRequest) => {
  switch (request.type) {
    case 'stats':
      report(stats());
      return;
    case 'probe': {
      const lagMs: number[] = [];
      let missing = 0;
      for (const w of workers) {
        const recorded = request.lastHeartbeatMs[w.id];
        const lag = recorded === undefined ? undefined : w.lagAt(recorded, request.at);
        if (lag === undefined) missing += 1;
        else lagMs.push(lag);
      }
      report({ type: 'probe', seen: lagMs.length, missing, lagMs });
      return;
    }
    case 'stop':
      stop();
      return;
  }
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);

// Open the streams RAMP at a time: a real fleet does not connect in one instant either.
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(RAMP, WORKERS) }, async () => {
    while (next < workers.length) {
      const w = workers[next++];
      if (w) await w.open();
    }
  }),
);
report({ type: 'ready', connected: workers.filter((w) => w.welcomed).length, seconds: (performance.now() - started) / 1000 });
if (!process.send) setInterval(() => report(stats()), 5_000);
