/**
 * @mmgrid/proto — TypeScript generated from proto/mmgrid/v1 (run `pnpm gen`; `pnpm gen:check`
 * fails when it is stale). protobufjs is the codec; service definitions are for @grpc/grpc-js.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js';
 * import { JobServiceClient } from '@mmgrid/proto';
 *
 * const client = new JobServiceClient('127.0.0.1:7070', credentials.createInsecure());
 * client.getJob({ jobId }, (err, job) => console.log(job?.state));
 * ```
 */
export {
  AdminServiceClient,
  AdminServiceService,
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
  WorkerSlots,
  WorkerView,
} from './gen/mmgrid/v1/admin.js';
export type { AdminServiceServer } from './gen/mmgrid/v1/admin.js';
export {
  BlobServiceClient,
  BlobServiceService,
  GetBlobRequest,
  GetBlobResponse,
  HasBlobsRequest,
  HasBlobsResponse,
  PutBlobHeader,
  PutBlobRequest,
  PutBlobResponse,
} from './gen/mmgrid/v1/blob.js';
export type { BlobServiceServer } from './gen/mmgrid/v1/blob.js';
export { BlobRef, ErrorDetail, Modality, TaskRequirements } from './gen/mmgrid/v1/common.js';
export {
  CancelJobRequest,
  ExplainJobRequest,
  ExplainJobResponse,
  GetJobRequest,
  Job,
  JobEvent,
  JobInput,
  JobResult,
  JobServiceClient,
  JobServiceService,
  JobSpec,
  JobState,
  JobStateChanged,
  ListJobsRequest,
  ListJobsResponse,
  RetryJobRequest,
  SubmitJobRequest,
  SubmitJobResponse,
  TaskProgressed,
  TaskState,
  TaskStateChanged,
  TaskExplanation,
  TaskStatus,
  WatchJobRequest,
} from './gen/mmgrid/v1/job.js';
export type { JobServiceServer } from './gen/mmgrid/v1/job.js';
export {
  CancelTask,
  CoordinatorMessage,
  Drain,
  DrainNotice,
  GpuInfo,
  GpuStats,
  Heartbeat,
  Hello,
  HostInfo,
  KindOffer,
  Lease,
  NamedBlob,
  ResultAck,
  SlotsUpdate,
  TaskAssignment,
  TaskFailure,
  TaskProgress,
  TaskResult,
  TaskRunStats,
  UpstreamOutput,
  Welcome,
  WorkerMessage,
  WorkerServiceClient,
  WorkerServiceService,
} from './gen/mmgrid/v1/worker.js';
export type { WorkerServiceServer } from './gen/mmgrid/v1/worker.js';
