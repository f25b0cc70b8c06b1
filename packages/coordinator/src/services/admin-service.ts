import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type {
  AdminServiceServer,
  GetQueueStatsRequest,
  GetQueueStatsResponse,
  ListWorkersRequest,
  ListWorkersResponse,
  QueueStats,
} from '@mmgrid/proto';
import type { Authenticator } from '../auth.js';
import { unary } from '../grpc-errors.js';
import type { Logger } from '../logger.js';
import type { TaskQueues } from '../task-queues.js';
import type { WorkerDirectory } from '../worker-directory.js';

export interface AdminServiceDeps {
  readonly auth: Authenticator;
  readonly directory: WorkerDirectory;
  readonly queues: TaskQueues;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Operators' fleet views: workers across every replica, and per-kind queue depth. */
export class AdminServiceImpl {
  constructor(private readonly deps: AdminServiceDeps) {}

  handlers(): AdminServiceServer & UntypedServiceImplementation {
    const { logger } = this.deps;
    return {
      listWorkers: unary(logger, 'ListWorkers', (call: ServerUnaryCall<ListWorkersRequest, ListWorkersResponse>) => this.listWorkers(call)),
      getQueueStats: unary(logger, 'GetQueueStats', (call: ServerUnaryCall<GetQueueStatsRequest, GetQueueStatsResponse>) => this.queueStats(call)),
    };
  }

  private async listWorkers(call: ServerUnaryCall<ListWorkersRequest, ListWorkersResponse>): Promise<ListWorkersResponse> {
    await this.deps.auth.authenticate(call.metadata, 'admin');
    return { workers: await this.deps.directory.list() };
  }

  private async queueStats(call: ServerUnaryCall<GetQueueStatsRequest, GetQueueStatsResponse>): Promise<GetQueueStatsResponse> {
    await this.deps.auth.authenticate(call.metadata, 'admin');
    const known = await this.deps.queues.known();
    const queues: QueueStats[] = await Promise.all(
      known.map(async (info) => {
        const queue = this.deps.queues.queue(info.name).queue;
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed', 'completed', 'waiting-children');
        // The next task to run in each list; its age is how long the queue head has waited.
        const heads = [...(await queue.getJobs(['waiting'], 0, 0, true)), ...(await queue.getJobs(['prioritized'], 0, 0, true))];
        const oldest = heads.reduce((min, j) => Math.min(min, j.timestamp), Number.POSITIVE_INFINITY);
        return {
          queue: info.name,
          kind: info.kind,
          tenant: info.tenant,
          waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0),
          active: counts['active'] ?? 0,
          delayed: counts['delayed'] ?? 0,
          failed: counts['failed'] ?? 0,
          completed: counts['completed'] ?? 0,
          waitingChildren: counts['waiting-children'] ?? 0,
          oldestWaitingAgeMs: Number.isFinite(oldest) ? Math.max(0, this.deps.now() - oldest) : 0,
        };
      }),
    );
    return { queues };
  }
}
