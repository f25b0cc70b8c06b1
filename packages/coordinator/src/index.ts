/**
 * @mmgrid/coordinator — a coordinator replica: the gRPC services (jobs, workers, blobs, admin)
 * over BullMQ queues and mmgrid's records in Redis.
 *
 * @example
 * ```ts
 * import { Coordinator } from '@mmgrid/coordinator';
 *
 * const coordinator = new Coordinator({
 *   redisUrl: process.env.REDIS_URL,
 *   listen: '0.0.0.0:7070',
 *   // TLS (plaintext is served on a loopback address, or elsewhere with insecure: true).
 *   tlsCertFile: 'server.pem',
 *   tlsKeyFile: 'server.key',
 *   metricsListen: '0.0.0.0:9464',
 * });
 * const { metricsAddress } = await coordinator.start(); // GET /metrics, GET /healthz
 * process.on('SIGTERM', () => void coordinator.stop());
 * ```
 */
export { bearerToken, OpenAuthenticator, TENANT_METADATA, TokenAuthenticator } from './auth.js';
export type { Authenticator, Principal, Role, TokenAuthenticatorOptions } from './auth.js';
export { BlobGrants } from './blob-grants.js';
export { FsBlobStore, verifiedChunks } from './blob-store.js';
export type { BlobStat, BlobStore, PutBlobResult } from './blob-store.js';
export { Coordinator } from './coordinator.js';
export type { CoordinatorParts } from './coordinator.js';
export { AUTH_MODES, MIN_ADMIN_TOKEN_CHARS, resolveCoordinatorOptions, withDefaults } from './coordinator-options.js';
export type { AuthMode, CoordinatorOptions, ListenerTlsFiles, ResolvedCoordinatorOptions } from './coordinator-options.js';
export {
  BadRequestError,
  BlobNotFoundError,
  CoordinatorError,
  JobNotFoundError,
  LimitExceededError,
  PermissionDeniedError,
  TlsConfigError,
  UnauthenticatedError,
} from './errors.js';
export type { CoordinatorErrorCode } from './errors.js';
export { LIMIT_METADATA, LIMIT_OPTIONS, RETRY_AFTER_METADATA } from './limits.js';
export type { LimitName } from './limits.js';
export { Metrics, QUEUE_STATES } from './metrics.js';
export type { BlobDirection, CoordinatorInstruments, JobOutcome, MetricsOptions, QueueDepth, QueueState, TaskOutcome, WorkerGaugeSource } from './metrics.js';
export { S3BlobStore } from './s3-blob-store.js';
export { BlobServiceImpl } from './services/blob-service.js';
export type { BlobServiceDeps } from './services/blob-service.js';
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export type { S3BlobStoreOptions } from './s3-blob-store.js';
export { hashToken, TokenStore } from './token-store.js';
export type { NewToken, TokenRecord } from './token-store.js';
