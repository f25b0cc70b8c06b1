import { randomUUID } from 'node:crypto';
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { TASK_KIND_PATTERN, taskKindInfo } from '@mmgrid/core';
import type { CoordinatorMessage, Hello, WorkerMessage, WorkerServiceServer } from '@mmgrid/proto';
import type { Authenticator, Principal } from '../auth.js';
import type { Dispatcher } from '../dispatcher.js';
import { CoordinatorError } from '../errors.js';
import { toServiceError } from '../grpc-errors.js';
import type { EventHub } from '../event-hub.js';
import type { JobStore } from '../job-store.js';
import type { Logger } from '../logger.js';
import type { WorkerDirectory } from '../worker-directory.js';
import type { WorkerRegistry } from '../worker-registry.js';
import { WorkerSession } from '../worker-session.js';

export interface WorkerServiceDeps {
  readonly auth: Authenticator;
  readonly registry: WorkerRegistry;
  readonly dispatcher: Dispatcher;
  readonly directory: WorkerDirectory;
  readonly jobs: JobStore;
  readonly hub: EventHub;
  readonly logger: Logger;
  readonly coordinatorId: string;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly maxMessageBytes: number;
  readonly now: () => number;
}

const HELLO_TIMEOUT_MS = 10_000;
const MAX_SLOTS_PER_KIND = 1024;
/** A worker silent for this many heartbeat intervals is disconnected. */
const MISSED_HEARTBEATS = 3;

type WorkerCall = ServerDuplexStream<WorkerMessage, CoordinatorMessage>;

/** Checks a Hello; returns a sentence naming the problem, or undefined. */
function helloProblem(hello: Hello): string | undefined {
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(hello.workerId)) return 'worker_id must be 1 to 128 letters, digits, "_", ".", ":" or "-"';
  if (hello.kinds.length === 0) return 'the worker offers no task kinds';
  for (const offer of hello.kinds) {
    if (!TASK_KIND_PATTERN.test(offer.kind)) return `task kind "${offer.kind}" is not a valid kind name (lower-case dotted words, e.g. image.ocr)`;
    if (taskKindInfo(offer.kind)?.placement === 'coordinator') return `task kind "${offer.kind}" runs inside the coordinator; workers cannot offer it`;
    if (offer.slots < 1 || offer.slots > MAX_SLOTS_PER_KIND) return `slots for ${offer.kind} must be from 1 to ${MAX_SLOTS_PER_KIND} (got ${offer.slots})`;
  }
  return undefined;
}

/** GPU owners' daemons: one Connect stream per worker. */
export class WorkerServiceImpl {
  constructor(private readonly deps: WorkerServiceDeps) {}

  handlers(): WorkerServiceServer & UntypedServiceImplementation {
    return {
      connect: (call: WorkerCall) => this.connect(call),
    };
  }

  /**
   * One worker's stream. Every message is handled in arrival order on one promise chain,
   * from the first (the hello) on, so nothing that arrives while the session is being set
   * up is lost; the welcome goes out only once the session is ready for the worker's results.
   */
  private connect(call: WorkerCall): void {
    const { registry, directory, logger } = this.deps;
    let session: WorkerSession | undefined;
    let log = logger;
    let opened = false;
    let closed = false;
    let watchdog: NodeJS.Timeout | undefined;
    let chain: Promise<void> = Promise.resolve();

    const close = (): void => {
      if (closed) return;
      closed = true;
      clearTimeout(helloTimer);
      if (watchdog) clearInterval(watchdog);
      if (!session) return;
      session.closed = true;
      registry.remove(session);
      void directory.remove(session).catch(() => undefined);
      // Leases stay with BullMQ's locks: if the worker reconnects in time it adopts them,
      // otherwise they lapse and the tasks run elsewhere.
      log.info({ running: session.leases.size }, 'worker disconnected');
    };
    const fail = (err: unknown): void => {
      if (closed) return;
      call.emit('error', toServiceError(err, logger, 'Connect'));
      close();
    };
    const helloTimer = setTimeout(() => fail(new CoordinatorError('INVALID_ARGUMENT', `no hello within ${HELLO_TIMEOUT_MS / 1000} s of connecting`)), HELLO_TIMEOUT_MS);

    call.on('data', (message: WorkerMessage) => {
      if (closed) return;
      if (!opened) {
        opened = true;
        clearTimeout(helloTimer);
        chain = this.open(call, message, fail).then((s) => {
          session = s;
          log = logger.child({ worker: s.name, workerId: s.workerId, session: s.sessionId });
          if (closed) {
            // The stream ended while the session was being set up.
            closed = false;
            close();
            return;
          }
          watchdog = setInterval(() => {
            if (this.deps.now() - s.lastHeartbeatAt > this.deps.heartbeatIntervalMs * MISSED_HEARTBEATS) {
              log.warn('worker stopped sending heartbeats; closing its stream');
              fail(new CoordinatorError('UNAVAILABLE', 'no heartbeat received in time'));
            }
          }, this.deps.heartbeatIntervalMs);
        }, fail);
        return;
      }
      chain = chain
        .then(() => (session && !closed ? this.handle(session, message) : undefined))
        .catch((err: unknown) => log.error({ err: String(err) }, 'handling a worker message failed'));
    });
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('error', close);
    call.on('cancelled', close);
    call.on('close', close);
  }

  /** Checks the hello, registers the session, adopts the worker's leases, and welcomes it. */
  private async open(call: WorkerCall, first: WorkerMessage, kick: (err: unknown) => void): Promise<WorkerSession> {
    const { auth, registry, dispatcher, directory, logger, now } = this.deps;
    let principal: Principal;
    try {
      principal = await auth.authenticate(call.metadata, 'worker');
    } catch (err) {
      if (err instanceof CoordinatorError && (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED')) {
        const hello = first.msg?.$case === 'hello' ? first.msg.hello : undefined;
        logger.warn({ code: err.code, peer: call.getPeer(), worker: hello?.name.slice(0, 128), workerId: hello?.workerId.slice(0, 128) }, `worker refused: ${err.message}`);
      }
      throw err;
    }
    if (first.msg?.$case !== 'hello') {
      throw new CoordinatorError('INVALID_ARGUMENT', `the first message on Connect must be a hello, not ${first.msg?.$case ?? 'an empty message'}`);
    }
    const hello = first.msg.hello;
    const problem = helloProblem(hello);
    if (problem) throw new CoordinatorError('INVALID_ARGUMENT', `bad hello from worker: ${problem}`);

    const session = new WorkerSession(randomUUID(), hello, call, now(), (reason, code = 'UNAVAILABLE') => kick(new CoordinatorError(code, reason)), principal.tokenId ?? '');
    // A worker has one stream: an older one from the same worker (a half-open connection
    // the worker gave up on) must not keep phantom slots here.
    for (const old of registry.byWorkerId(hello.workerId)) old.kick('replaced by a newer connection from the same worker');
    await dispatcher.loadTrust(session);
    const lost = await dispatcher.adopt(session, hello.running);
    registry.add(session);
    try {
      await directory.publish(session);
      directory.forgetOffered();
      await this.deps.hub.broadcast({ type: 'worker-connected', workerId: session.workerId, sessionId: session.sessionId });
    } catch (err) {
      session.closed = true;
      registry.remove(session);
      throw err;
    }
    session.send({
      msg: {
        $case: 'welcome',
        welcome: {
          sessionId: session.sessionId,
          coordinatorId: this.deps.coordinatorId,
          heartbeatIntervalMs: this.deps.heartbeatIntervalMs,
          leaseDurationMs: this.deps.leaseMs,
          lost,
          maxMessageBytes: this.deps.maxMessageBytes,
        },
      },
    });
    logger.info(
      { worker: session.name, workerId: session.workerId, session: session.sessionId, token: principal.tokenId, kinds: hello.kinds.map((k) => `${k.kind}×${k.slots}`).join(' '), adopted: hello.running.length - lost.length },
      'worker connected',
    );
    return session;
  }

  private async handle(session: WorkerSession, message: WorkerMessage): Promise<void> {
    const { dispatcher, directory, registry, jobs, now } = this.deps;
    const msg = message.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'hello':
        return;
      case 'heartbeat': {
        session.lastHeartbeatAt = now();
        session.warmModels = [...msg.heartbeat.warmModels];
        session.gpuStats = [...msg.heartbeat.gpus];
        // Free GPU memory may have grown: tasks waiting for VRAM may fit now.
        if (session.gpuStats.length > 0) registry.notifyAll();
        const lost = await dispatcher.renew(session, msg.heartbeat.running);
        for (const lease of lost) session.send({ msg: { $case: 'cancel', cancel: { lease, reason: 'lease lost: the task went back to the queue' } } });
        await directory.publish(session);
        return;
      }
      case 'progress': {
        const lease = msg.progress.lease ? session.leases.get(msg.progress.lease.leaseId) : undefined;
        if (!lease) return;
        const fraction = Math.min(1, Math.max(0, msg.progress.fraction));
        await jobs.progress(lease.job.data.jobId, lease.job.data.taskId, fraction, msg.progress.message.slice(0, 500), now());
        return;
      }
      case 'result':
        return dispatcher.complete(session, msg.result);
      case 'failure':
        return dispatcher.fail(session, msg.failure);
      case 'slots': {
        const problem = helloProblem({ ...session.hello, kinds: msg.slots.kinds });
        if (problem) return;
        for (const offer of msg.slots.kinds) {
          const slot = session.slots.get(offer.kind);
          if (slot) {
            slot.slots = offer.slots;
            slot.models = [...offer.models];
          } else {
            session.slots.set(offer.kind, { slots: offer.slots, busy: 0, models: [...offer.models] });
          }
          registry.notify(offer.kind);
        }
        await directory.publish(session);
        return;
      }
      case 'draining':
        session.draining = true;
        await directory.publish(session);
        return;
    }
  }
}

