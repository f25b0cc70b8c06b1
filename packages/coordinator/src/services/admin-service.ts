import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type {
  AdminServiceServer,
  CreateTokenRequest,
  CreateTokenResponse,
  GetQueueStatsRequest,
  GetQueueStatsResponse,
  ListWorkersRequest,
  ListTokensRequest,
  ListTokensResponse,
  ListWorkersResponse,
  QueueStats,
  ReleaseWorkerRequest,
  ReleaseWorkerResponse,
  RevokeTokenRequest,
  RevokeTokenResponse,
  TokenInfo,
} from '@mmgrid/proto';
import type { Authenticator } from '../auth.js';
import type { EventHub } from '../event-hub.js';
import { CoordinatorError } from '../errors.js';
import { unary } from '../grpc-errors.js';
import type { Logger } from '../logger.js';
import type { TaskQueues } from '../task-queues.js';
import type { TokenRecord, TokenStore } from '../token-store.js';
import type { WorkerDirectory } from '../worker-directory.js';

export interface AdminServiceDeps {
  readonly auth: Authenticator;
  readonly directory: WorkerDirectory;
  readonly queues: TaskQueues;
  readonly tokens: TokenStore;
  readonly hub: EventHub;
  readonly logger: Logger;
  readonly now: () => number;
  /** Lifts a worker's quarantine (result verification); whether it was quarantined. */
  readonly releaseWorker: (workerId: string) => Promise<boolean>;
}

function tokenInfo(record: TokenRecord): TokenInfo {
  return {
    id: record.id,
    role: record.role,
    tenant: record.tenant,
    name: record.name,
    createdAtMs: record.createdAt,
    expiresAtMs: record.expiresAt,
    revokedAtMs: record.revokedAt,
  };
}

/** Operators' fleet views (workers across every replica, per-kind queue depth) and tokens. */
export class AdminServiceImpl {
  constructor(private readonly deps: AdminServiceDeps) {}

  handlers(): AdminServiceServer & UntypedServiceImplementation {
    const { logger } = this.deps;
    return {
      listWorkers: unary(logger, 'ListWorkers', (call: ServerUnaryCall<ListWorkersRequest, ListWorkersResponse>) => this.listWorkers(call)),
      getQueueStats: unary(logger, 'GetQueueStats', (call: ServerUnaryCall<GetQueueStatsRequest, GetQueueStatsResponse>) => this.queueStats(call)),
      createToken: unary(logger, 'CreateToken', (call: ServerUnaryCall<CreateTokenRequest, CreateTokenResponse>) => this.createToken(call)),
      listTokens: unary(logger, 'ListTokens', (call: ServerUnaryCall<ListTokensRequest, ListTokensResponse>) => this.listTokens(call)),
      revokeToken: unary(logger, 'RevokeToken', (call: ServerUnaryCall<RevokeTokenRequest, RevokeTokenResponse>) => this.revokeToken(call)),
      releaseWorker: unary(logger, 'ReleaseWorker', (call: ServerUnaryCall<ReleaseWorkerRequest, ReleaseWorkerResponse>) => this.releaseWorker(call)),
    };
  }

  private async createToken(call: ServerUnaryCall<CreateTokenRequest, CreateTokenResponse>): Promise<CreateTokenResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'admin');
    const { role, tenant, name, expiresInMs } = call.request;
    const { token, record } = await this.deps.tokens.create({ role, tenant, name, expiresInMs });
    // An audit line: who made which token (never the token itself).
    this.deps.logger.info({ tokenId: record.id, role: record.role, tenant: record.tenant, name: record.name, expiresAt: record.expiresAt, by: principal.subject }, 'token created');
    return { info: tokenInfo(record), token };
  }

  private async listTokens(call: ServerUnaryCall<ListTokensRequest, ListTokensResponse>): Promise<ListTokensResponse> {
    await this.deps.auth.authenticate(call.metadata, 'admin');
    return { tokens: (await this.deps.tokens.list(call.request.includeRevoked)).map(tokenInfo) };
  }

  private async revokeToken(call: ServerUnaryCall<RevokeTokenRequest, RevokeTokenResponse>): Promise<RevokeTokenResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'admin');
    const record = await this.deps.tokens.revoke(call.request.id.trim());
    // Every replica (this one included) drops it from its cache and disconnects its workers.
    await this.deps.hub.broadcast({ type: 'token-revoked', tokenId: record.id });
    this.deps.logger.info({ tokenId: record.id, role: record.role, tenant: record.tenant, name: record.name, by: principal.subject }, 'token revoked');
    return { info: tokenInfo(record) };
  }

  private async releaseWorker(call: ServerUnaryCall<ReleaseWorkerRequest, ReleaseWorkerResponse>): Promise<ReleaseWorkerResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'admin');
    const workerId = call.request.workerId.trim();
    if (workerId === '') throw new CoordinatorError('INVALID_ARGUMENT', 'name the worker to release (its id, as `mmgrid workers` lists it)');
    const wasQuarantined = await this.deps.releaseWorker(workerId);
    this.deps.logger.info({ workerId, wasQuarantined, by: principal.subject }, 'worker released from quarantine');
    return { wasQuarantined };
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
