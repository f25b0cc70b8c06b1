import { randomUUID } from 'node:crypto';
import { status, type ServerDuplexStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { TASK_KIND_PATTERN } from '@mmgrid/core';
import type { CoordinatorMessage, Hello, WorkerMessage, WorkerServiceServer } from '@mmgrid/proto';
import type { Authenticator } from '../auth.js';
import type { Dispatcher } from '../dispatcher.js';
import { CoordinatorError } from '../errors.js';
import { toServiceError } from '../grpc-errors.js';
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
    if (offer.slots < 1 || offer.slots > MAX_SLOTS_PER_KIND) return `slots for ${offer.kind} must be from 1 to ${MAX_SLOTS_PER_KIND} (got ${offer.slots})`;
  }
  return undefined;
}

/** GPU owners' daemons: one Connect stream per worker. */
export class WorkerServiceImpl {
  constructor(private readonly deps: WorkerServiceDeps) {}

  handlers(): WorkerServiceServer & UntypedServiceImplementation {
    return {
      connect: (call: WorkerCall) => {
        this.connect(call).catch((err: unknown) => {
          const e = toServiceError(err, this.deps.logger, 'Connect');
          call.emit('error', e);
        });
      },
    };
  }

  private async connect(call: WorkerCall): Promise<void> {
    const { auth, registry, dispatcher, directory, logger, now } = this.deps;
    await auth.authenticate(call.metadata, 'worker');
    const hello = await this.firstHello(call);
    const problem = helloProblem(hello);
    if (problem) throw new CoordinatorError('INVALID_ARGUMENT', `bad hello from worker: ${problem}`);

    const session = new WorkerSession(randomUUID(), hello, call, now());
    const log = logger.child({ worker: session.name, workerId: session.workerId, session: session.sessionId });
    const lost = await dispatcher.adopt(session, hello.running);
    registry.add(session);
    dispatcher.ensureKinds(session.slots.keys());
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
    await directory.publish(session);
    log.info({ kinds: hello.kinds.map((k) => `${k.kind}×${k.slots}`).join(' '), adopted: hello.running.length - lost.length }, 'worker connected');

    const watchdog = setInterval(() => {
      if (now() - session.lastHeartbeatAt > this.deps.heartbeatIntervalMs * MISSED_HEARTBEATS) {
        log.warn('worker stopped sending heartbeats; closing its stream');
        call.emit('error', Object.assign(new Error('no heartbeat'), { code: status.DEADLINE_EXCEEDED, details: 'no heartbeat received in time' }));
        close();
      }
    }, this.deps.heartbeatIntervalMs);

    let closing = false;
    const close = (): void => {
      if (closing) return;
      closing = true;
      clearInterval(watchdog);
      session.closed = true;
      registry.remove(session);
      void directory.remove(session).catch(() => undefined);
      // Leases stay with BullMQ's locks: if the worker reconnects in time it adopts them,
      // otherwise they lapse and the tasks run elsewhere.
      log.info({ running: session.leases.size }, 'worker disconnected');
    };
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('error', close);
    call.on('cancelled', close);
    call.on('close', close);

    // Messages are handled one at a time, in order, so a result is never overtaken.
    let chain = Promise.resolve();
    call.on('data', (message: WorkerMessage) => {
      chain = chain
        .then(() => this.handle(session, message))
        .catch((err: unknown) => log.error({ err: String(err) }, 'handling a worker message failed'));
    });
  }

  private firstHello(call: WorkerCall): Promise<Hello> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new CoordinatorError('INVALID_ARGUMENT', `no hello within ${HELLO_TIMEOUT_MS / 1000} s of connecting`));
      }, HELLO_TIMEOUT_MS);
      const onData = (message: WorkerMessage): void => {
        cleanup();
        if (message.msg?.$case === 'hello') resolve(message.msg.hello);
        else reject(new CoordinatorError('INVALID_ARGUMENT', `the first message on Connect must be a hello, not ${message.msg?.$case ?? 'an empty message'}`));
      };
      const onEnd = (): void => {
        cleanup();
        reject(new CoordinatorError('INVALID_ARGUMENT', 'the stream ended before a hello'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        call.off('data', onData);
        call.off('end', onEnd);
      };
      call.on('data', onData);
      call.on('end', onEnd);
    });
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
          if (slot) slot.total = offer.slots;
          else session.slots.set(offer.kind, { total: offer.slots, busy: 0 });
          registry.notify(offer.kind);
        }
        dispatcher.ensureKinds(session.slots.keys());
        return;
      }
      case 'draining':
        session.draining = true;
        await directory.publish(session);
        return;
    }
  }
}

