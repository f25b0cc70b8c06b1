import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { monotonicFactory } from 'ulid';
import { isTerminalJobState, RECOMMENDED_HASH_MAX_LISTPACK_VALUE, trustScore } from '@mmgrid/core';
import { AdminServiceService, BlobServiceService, JobServiceService, WorkerServiceService } from '@mmgrid/proto';
import { AssemblyRunner } from './assembly-runner.js';
import { OpenAuthenticator, TokenAuthenticator, type Authenticator } from './auth.js';
import { BlobGrants } from './blob-grants.js';
import { FsBlobStore, type BlobStore } from './blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';
import { resolveCoordinatorOptions, type CoordinatorOptions, type ResolvedCoordinatorOptions } from './coordinator-options.js';
import { Dispatcher } from './dispatcher.js';
import { EventHub } from './event-hub.js';
import { FanOutRunner } from './fan-out-runner.js';
import { grpcMetricsInterceptor } from './grpc-metrics.js';
import { JobStore } from './job-store.js';
import { listenerCredentials, type ListenerTlsSummary } from './listener-tls.js';
import { Keys } from './keys.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { MetricsServer } from './metrics-server.js';
import { AdminServiceImpl } from './services/admin-service.js';
import { BlobServiceImpl } from './services/blob-service.js';
import { JobServiceImpl } from './services/job-service.js';
import { WorkerServiceImpl } from './services/worker-service.js';
import { SubmitRateLimiter } from './submit-rate-limiter.js';
import { tenantLimitsLookup } from './limits.js';
import { queueOfTask, TaskQueues } from './task-queues.js';
import { TokenStore } from './token-store.js';
import { WorkerDirectory } from './worker-directory.js';
import { Verifier } from './verifier.js';
import { Canaries } from './canaries.js';
import { WorkerRegistry } from './worker-registry.js';

export interface CoordinatorParts {
  /** Defaults to the one options.auth names: an open grid, or the grid's tokens. */
  readonly auth?: Authenticator;
  readonly blobs?: BlobStore;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/**
 * One coordinator replica: a gRPC server over Redis. Replicas share nothing but Redis (and
 * the blob store), so any number may run side by side.
 *
 * @example
 * ```ts
 * const coordinator = new Coordinator({ redisUrl: 'redis://127.0.0.1:6379', listen: '127.0.0.1:0' });
 * const { port } = await coordinator.start();
 * // …
 * await coordinator.stop();
 * ```
 */
export class Coordinator {
  readonly options: ResolvedCoordinatorOptions;
  readonly logger: Logger;
  /** This replica's metrics (served on GET /metrics at options.metricsListen). */
  readonly metrics: Metrics;
  private readonly redis: Redis;
  private readonly keys: Keys;
  private readonly server: Server;
  private readonly registry: WorkerRegistry;
  /** Result verification; undefined when off. */
  private readonly verifier: Verifier | undefined;
  private readonly jobs: JobStore;
  private readonly queues: TaskQueues;
  private readonly dispatcher: Dispatcher;
  private readonly assembly: AssemblyRunner;
  private readonly fanOut: FanOutRunner;
  private readonly jobService: JobServiceImpl;
  private readonly hub: EventHub;
  private readonly directory: WorkerDirectory;
  private readonly blobs: BlobStore;
  private readonly grants: BlobGrants;
  private readonly tokens: TokenStore;
  private readonly auth: Authenticator;
  private sessionChecker: NodeJS.Timeout | undefined;
  /** The blob store was made here (not passed in), so stop() closes it. */
  private readonly ownsBlobs: boolean;
  private readonly now: () => number;
  private readonly metricsServer: MetricsServer;
  /** The gRPC listener's credentials: TLS, or plaintext (loopback, or asked for with insecure). */
  private readonly listenerCredentials: ServerCredentials;
  private readonly tlsSummary: ListenerTlsSummary | undefined;
  private port = 0;
  private boundMetricsAddress: string | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private pinging = false;

  constructor(options: CoordinatorOptions = {}, parts: CoordinatorParts = {}) {
    this.options = resolveCoordinatorOptions(options, `${hostname()}-${process.pid}`);
    const o = this.options;
    // Read before anything connects, so a bad file stops the coordinator at once.
    const tls = o.tls ? listenerCredentials(o.tls) : undefined;
    this.listenerCredentials = tls?.credentials ?? ServerCredentials.createInsecure();
    this.tlsSummary = tls?.summary;
    this.now = parts.now ?? Date.now;
    this.logger = parts.logger ?? createLogger('coordinator', { coordinator: o.coordinatorId });
    // BullMQ needs maxRetriesPerRequest: null so its blocking calls survive Redis restarts.
    this.redis = new Redis(o.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.redis.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'redis connection error'));
    const connection = { url: o.redisUrl, maxRetriesPerRequest: null };
    this.metrics = new Metrics({ now: this.now });
    this.keys = new Keys(o.keyPrefix);
    const tenantLimits = tenantLimitsLookup(o);
    this.jobs = new JobStore(this.redis, this.keys, o.jobRetentionMs, this.metrics, tenantLimits);
    this.queues = new TaskQueues(this.redis, this.keys, { leaseMs: o.leaseMs, stalledIntervalMs: o.stalledCheckIntervalMs, maxStalledCount: o.maxStalledCount });
    this.hub = new EventHub(this.redis, this.keys, this.logger);
    this.directory = new WorkerDirectory(this.redis, this.keys, o.coordinatorId, o.heartbeatIntervalMs * 4, this.now, o.verification !== undefined);
    this.registry = new WorkerRegistry((session) => this.directory.touch(session));
    this.blobs = parts.blobs ?? (o.blobStoreUrl !== '' ? S3BlobStore.fromUrl(o.blobStoreUrl, o.maxBlobBytes) : new FsBlobStore(o.blobDir, o.maxBlobBytes));
    this.ownsBlobs = parts.blobs === undefined;
    this.grants = new BlobGrants(this.redis, this.keys);
    this.tokens = new TokenStore(this.redis, this.keys, this.now);
    const announceTrust = (workerId: string): Promise<void> => this.hub.broadcast({ type: 'worker-trust-changed', workerId });
    this.verifier = o.verification ? new Verifier(this.redis, this.keys, o.verification, this.registry, this.metrics, this.logger, this.now, announceTrust) : undefined;
    const canaries =
      this.verifier && o.verification && o.verification.canaryRate > 0
        ? new Canaries({ redis: this.redis, keys: this.keys, registry: this.registry, verifier: this.verifier, logger: this.logger, now: this.now, rate: o.verification.canaryRate, leaseMs: o.leaseMs })
        : undefined;
    this.dispatcher = new Dispatcher({
      verifier: this.verifier,
      canaries,
      redis: this.redis,
      keys: this.keys,
      queues: this.queues,
      hub: this.hub,
      registry: this.registry,
      jobs: this.jobs,
      logger: this.logger,
      metrics: this.metrics,
      leaseMs: o.leaseMs,
      stalledCheckIntervalMs: o.stalledCheckIntervalMs,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      maxStalledCount: o.maxStalledCount,
      now: this.now,
    });
    this.assembly = new AssemblyRunner({
      redis: this.redis,
      keys: this.keys,
      connection,
      jobs: this.jobs,
      grants: this.grants,
      logger: this.logger,
      concurrency: o.assemblyConcurrency,
      leaseMs: o.leaseMs,
      stalledIntervalMs: o.stalledCheckIntervalMs,
      maxStalledCount: o.maxStalledCount,
      now: this.now,
    });
    this.fanOut = new FanOutRunner({
      redis: this.redis,
      keys: this.keys,
      connection,
      queues: this.queues,
      jobs: this.jobs,
      blobs: this.blobs,
      hub: this.hub,
      wake: (queues) => this.dispatcher.wake(queues),
      logger: this.logger,
      metrics: this.metrics,
      concurrency: o.assemblyConcurrency,
      leaseMs: o.leaseMs,
      stalledIntervalMs: o.stalledCheckIntervalMs,
      maxStalledCount: o.maxStalledCount,
      maxShards: o.maxShards,
      now: this.now,
    });
    const auth = parts.auth ?? (o.auth === 'tokens' ? new TokenAuthenticator({ store: this.tokens, adminToken: o.adminToken, now: this.now }) : new OpenAuthenticator());
    this.auth = auth;
    const newJobId = monotonicFactory();
    this.server = new Server({
      'grpc.max_receive_message_length': o.maxMessageBytes,
      'grpc.max_send_message_length': o.maxMessageBytes,
      // Workers sit behind NATs that drop idle flows: let them ping, and ping them.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      // Every call of every service is counted (and unary ones timed) here, by final status.
      interceptors: [grpcMetricsInterceptor(this.metrics)],
    });
    this.jobService = new JobServiceImpl({
      jobs: this.jobs,
      queues: this.queues,
      blobs: this.blobs,
      auth,
      hub: this.hub,
      logger: this.logger,
      now: this.now,
      newJobId: () => newJobId(this.now()),
      cancelRunning: (jobId) => this.hub.broadcast({ type: 'cancel-job', jobId }),
      dispatcher: this.dispatcher,
      directory: this.directory,
      metrics: this.metrics,
      grants: this.grants,
      limits: { maxInputsPerJob: o.maxInputsPerJob, maxPromptChars: o.maxPromptChars, maxTextInputChars: o.maxTextInputChars },
      submitRate: new SubmitRateLimiter(this.redis, this.keys, tenantLimits),
    });
    this.server.addService(JobServiceService, this.jobService.handlers());
    this.server.addService(
      WorkerServiceService,
      new WorkerServiceImpl({
        auth,
        registry: this.registry,
        dispatcher: this.dispatcher,
        directory: this.directory,
        jobs: this.jobs,
        hub: this.hub,
        logger: this.logger,
        coordinatorId: o.coordinatorId,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        leaseMs: o.leaseMs,
        maxMessageBytes: o.maxMessageBytes,
        now: this.now,
      }).handlers(),
    );
    this.server.addService(BlobServiceService, new BlobServiceImpl({ blobs: this.blobs, auth, logger: this.logger, maxBlobBytes: o.maxBlobBytes, metrics: this.metrics, grants: this.grants }).handlers());
    this.server.addService(
      AdminServiceService,
      new AdminServiceImpl({
        auth,
        directory: this.directory,
        queues: this.queues,
        tokens: this.tokens,
        hub: this.hub,
        logger: this.logger,
        now: this.now,
        releaseWorker: (workerId) => this.dispatcher.releaseWorker(workerId),
      }).handlers(),
    );
    this.metrics.setQueueSource(() => this.queues.depths());
    this.metrics.setWorkerSource(() =>
      this.registry
        .all()
        .filter((s) => !s.closed)
        .map((s) => ({
          name: s.name,
          gpus: s.hello.gpus,
          gpuStats: s.gpuStats,
          slots: s.slots,
          vramBudgetBytes: s.vramBudgetBytes,
          trust: this.verifier ? { score: trustScore(s.trust), standing: s.standing } : undefined,
        })),
    );
    this.metricsServer = new MetricsServer({
      metrics: this.metrics,
      // Never queued while Redis is away (the client would hold it until Redis is back).
      ping: () => (this.redis.status === 'ready' ? this.redis.ping() : Promise.reject(new Error(`redis is ${this.redis.status}`))),
      logger: this.logger,
    });
    if (auth instanceof OpenAuthenticator) {
      this.logger.warn('running an open grid: callers are not authenticated and all share the default tenant');
    } else if (auth instanceof TokenAuthenticator && o.adminToken === '') {
      this.logger.info('tokens required; no bootstrap admin token (MMGRID_ADMIN_TOKEN) is set, so only admin tokens already issued can manage tokens');
    }
  }

  /** The bound "host:port" of GET /metrics and /healthz; undefined when off, not bound, or not started. */
  get metricsAddress(): string | undefined {
    return this.boundMetricsAddress;
  }

  /**
   * Connects to Redis, starts the services and listens. Resolves with the bound gRPC address,
   * and the metrics address (undefined when off or when its port could not be bound).
   */
  async start(): Promise<{ host: string; port: number; address: string; metricsAddress: string | undefined }> {
    const o = this.options;
    await this.connectRedis();
    await this.checkRedisSettings();
    if (this.blobs instanceof FsBlobStore || this.blobs instanceof S3BlobStore) await this.blobs.init();
    await this.hub.start({
      onControl: (message) => {
        // Another replica's new worker may offer kinds that submits here should plan for.
        if (message.type === 'worker-connected') this.directory.forgetOffered();
        // Before the dispatcher disconnects its workers: their reconnection must be refused.
        if (message.type === 'token-revoked' && this.auth instanceof TokenAuthenticator) this.auth.forget(message.tokenId);
        this.dispatcher.onControl(message);
      },
      onWake: (queue) => this.dispatcher.onWake(queue),
      onResubscribed: () => {
        this.dispatcher.onResubscribed();
        // A revocation may have been missed meanwhile.
        void this.checkSessionTokens();
      },
    });
    await this.dispatcher.start();
    this.assembly.start();
    this.fanOut.start();
    await this.sweepUnaccepted();
    this.sweeper = setInterval(() => void this.sweepUnaccepted(), ACCEPT_SWEEP_MS);
    const host = o.listenHost.includes(':') ? `[${o.listenHost}]` : o.listenHost;
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${o.listenPort}`, this.listenerCredentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
    const address = `${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${this.port}`;
    const transport = this.tlsSummary ? (this.tlsSummary.mutual ? 'mutual TLS' : 'TLS') : 'plaintext';
    this.logger.info(
      { listen: `${host}:${this.port}`, transport, redis: redact(o.redisUrl), blobs: o.blobStoreUrl !== '' ? redact(o.blobStoreUrl) : o.blobDir, ...(this.tlsSummary ? { tls: this.tlsSummary } : {}) },
      'coordinator listening',
    );
    if (!this.tlsSummary) {
      this.logger.warn(
        { listen: `${host}:${this.port}`, insecure: o.insecure },
        o.insecure
          ? `serving plaintext gRPC on ${host}:${this.port} (--insecure): tokens, inputs and results cross the network unencrypted; give --tls-cert and --tls-key for TLS (docs/security.md)`
          : `serving plaintext gRPC on ${host}:${this.port}, this machine only; give --tls-cert and --tls-key for TLS (docs/security.md)`,
      );
    }
    if (o.metricsListen) this.boundMetricsAddress = await this.metricsServer.start(o.metricsListen.host, o.metricsListen.port);
    this.pinger = setInterval(() => void this.pingRedis(), REDIS_PING_MS);
    this.pinger.unref();
    if (this.auth instanceof TokenAuthenticator) this.sessionChecker = setInterval(() => void this.checkSessionTokens(), SESSION_TOKEN_CHECK_MS);
    return { host, port: this.port, address, metricsAddress: this.boundMetricsAddress };
  }

  /**
   * Warns about Redis settings that cost memory or safety (deploy/redis/redis.conf has them
   * right). A Redis that does not allow CONFIG (some managed services) is not checked.
   */
  private async checkRedisSettings(): Promise<void> {
    let config: string[];
    try {
      config = (await this.redis.config('GET', 'hash-max-listpack-value')) as string[];
    } catch {
      return;
    }
    const value = Number(config[1] ?? Number.NaN);
    if (Number.isFinite(value) && value < RECOMMENDED_HASH_MAX_LISTPACK_VALUE) {
      this.logger.warn(
        { hashMaxListpackValue: value, recommended: RECOMMENDED_HASH_MAX_LISTPACK_VALUE },
        `Redis has hash-max-listpack-value ${value}: each queued task takes about 400 bytes more than at ${RECOMMENDED_HASH_MAX_LISTPACK_VALUE} (set it in redis.conf; see docs/operations.md)`,
      );
    }
  }

  /**
   * Disconnects workers whose token has expired, or was revoked while this replica missed the
   * notice (its subscription was down). One read per distinct token in use.
   */
  private async checkSessionTokens(): Promise<void> {
    const auth = this.auth;
    if (!(auth instanceof TokenAuthenticator)) return;
    const sessions = this.registry.all().filter((s) => !s.closed && s.tokenId !== '');
    for (const tokenId of new Set(sessions.map((s) => s.tokenId))) {
      try {
        if (await auth.stillValid(tokenId)) continue;
      } catch {
        continue;
      }
      auth.forget(tokenId);
      for (const session of sessions) {
        if (session.tokenId === tokenId && !session.closed) await this.dispatcher.revokeSession(session, `the worker's token ${tokenId} is no longer valid (revoked or expired)`);
      }
    }
  }

  /** Times a PING for the Redis latency metric (skipped while disconnected, or while one is out). */
  private async pingRedis(): Promise<void> {
    if (this.pinging || this.redis.status !== 'ready') return;
    this.pinging = true;
    const start = performance.now();
    try {
      await this.redis.ping();
      this.metrics.redisCommand('ping', start);
    } catch {
      // The connection's own error handler logs what went wrong.
    } finally {
      this.pinging = false;
    }
  }

  /** Waits for Redis (BullMQ may already be connecting the shared client), failing clearly. */
  private async connectRedis(): Promise<void> {
    if (this.redis.status === 'ready') return;
    if (this.redis.status === 'wait') void this.redis.connect().catch(() => undefined);
    const url = redact(this.options.redisUrl);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`cannot reach Redis at ${url} (waited ${REDIS_CONNECT_TIMEOUT_MS / 1000} s); is it running? Set --redis or REDIS_URL`));
      }, REDIS_CONNECT_TIMEOUT_MS);
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
      };
      this.redis.on('ready', onReady);
      if (this.redis.status === 'ready') onReady();
    });
  }

  /**
   * Finishes accepting jobs whose submitting replica died between storing the job and queueing
   * its tasks (adding a job's tasks is idempotent, so replicas may race here harmlessly).
   */
  private async sweepUnaccepted(): Promise<void> {
    try {
      for (const id of await this.jobs.unaccepted(this.now() - ACCEPT_SWEEP_MS)) {
        const job = await this.jobs.get(id);
        if (job && !isTerminalJobState(job.state)) {
          const fresh = await this.queues.addJob({ ...job, priorAttempts: JobStore.priorAttempts(await this.jobs.tasks(id)) });
          if (fresh.length > 0) await this.hub.broadcast({ type: 'queues-added' });
          await this.dispatcher.wake(job.graph.tasks.map((t) => queueOfTask(t, job.tenant)));
          this.logger.warn({ jobId: id }, 'queued the tasks of a job whose submission was interrupted');
        }
        // Its submitting replica died before counting it; a retried job was counted once already.
        if ((await this.jobs.accepted(id)) && job && job.generation === 0) this.metrics.jobSubmitted(job.pipeline, job.tenant);
      }
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'acceptance sweep failed; will retry');
    }
  }

  /** Stops taking calls, closes worker streams, and releases Redis. Leases live on in Redis. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.pinger) clearInterval(this.pinger);
    if (this.sessionChecker) clearInterval(this.sessionChecker);
    await this.metricsServer.stop();
    this.boundMetricsAddress = undefined;
    for (const session of this.registry.all()) {
      session.send({ msg: { $case: 'drain', drain: { reason: 'coordinator shutting down; reconnect to another replica' } } });
    }
    // Watchers resume elsewhere at once, and the shutdown below need not wait for them.
    this.jobService.endWatches();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.dispatcher.close();
    await this.assembly.close();
    await this.fanOut.close();
    await this.queues.close();
    this.hub.close();
    this.redis.disconnect();
    // The S3 client's sockets; a store passed in is its owner's to close.
    if (this.ownsBlobs && this.blobs instanceof S3BlobStore) this.blobs.close();
  }
}

/** A job not fully accepted after this long is finished by the sweep. */
const ACCEPT_SWEEP_MS = 30_000;
const REDIS_CONNECT_TIMEOUT_MS = 15_000;
/** How often the tokens of connected workers are checked (expiry, a missed revocation). */
const SESSION_TOKEN_CHECK_MS = 15_000;
/** How often the Redis round trip is measured with a PING. */
const REDIS_PING_MS = 5_000;

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
