/**
 * @mmgrid/core — the pure heart of mmgrid: job specs, the planner that turns a job into a
 * task graph, the assembler that turns task outcomes into a result, task kinds and their
 * output schemas, and retry math. No IO: no Redis, no gRPC, no filesystem.
 *
 * @example
 * ```ts
 * import { validateJobSpec, plan, assembleJobResult } from '@mmgrid/core';
 *
 * const spec = validateJobSpec({ inputs: [], prompt: 'What is this?' });
 * const graph = plan({ pipeline: spec.pipeline, prompt: spec.prompt, inputs: [] });
 * // …run graph.tasks, collect outcomes…
 * const result = assembleJobResult(graph, [], spec.prompt, outcomes);
 * ```
 */
export { assembleJobResult } from './assembler.js';
export type { AssembledJob, JobResultDoc, ResultFailure, ResultInput, TaskError, TaskOutcome } from './assembler.js';
export { BLOB_CHUNK_BYTES, blobRefSchema, isSha256, SHA256_PATTERN } from './blob-ref.js';
export type { BlobRef } from './blob-ref.js';
export {
  InvalidJobSpecError,
  InvalidOptionError,
  InvalidTaskOutputError,
  MmgridError,
  PlanError,
  UnsupportedMediaError,
} from './errors.js';
export type { MmgridErrorCode } from './errors.js';
export { buildFusionReport } from './fusion-report.js';
export type { UpstreamItem } from './fusion-report.js';
export { DEFAULT_JOB_LIMITS, PROMPT_INPUT_NAME, validateJobSpec } from './job-spec.js';
export type { JobInputSource, JobInputSpec, JobLimits, JobSpec } from './job-spec.js';
export { canTransition, isTerminalJobState, TERMINAL_JOB_STATES } from './job-state.js';
export type { JobStateName, TaskStateName } from './job-state.js';
export type { JsonObject, JsonPrimitive, JsonValue } from './json.js';
export { describeSupportedMedia, MODALITIES, modalityOf, normaliseMediaType, SUPPORTED_MEDIA_TYPES } from './modality.js';
export type { Modality } from './modality.js';
export { booleanEnv, durationOption, intOption, isLoopbackHost, LOG_FORMATS, LOG_LEVELS, logSettings, nonEmptyOption, parseCoordinatorAddress, parseHostPort, unreadableFileReason } from './options.js';
export type { CoordinatorAddress, LogLevel } from './options.js';
export { builtinPipelines, DEFAULT_PIPELINE, pipelineInfo, pipelineNames } from './pipelines.js';
export type { PipelineInfo, PipelineParam } from './pipelines.js';
export { bestWorker, canRun, canTakeNow, describeRequirements, explainWaiting, formatBytes, freeVram, pickGpu, rankWorkers } from './placement.js';
export type { Fit, WorkerCapability } from './placement.js';
export { retryPlan } from './retry-plan.js';
export { isRole, ROLES, TOKEN_PREFIX } from './roles.js';
export type { Role } from './roles.js';
export { plan } from './planner.js';
export type { FusionParams, PlanInput, PlanRequest } from './planner.js';
export { DEFAULT_RETRY_POLICY, retryDelayMs, shouldRetry, validateRetryPolicy } from './retry-policy.js';
export type { RetryPolicy } from './retry-policy.js';
export { audioWindows, batches, DEFAULT_SHARDING, frameTimes, textChunks, type ShardSettings } from './sharding.js';
export type { AudioWindowOptions, TextChunk, WindowPlan } from './sharding.js';
export { buildTimeline, ownedInterval, stitchAudioAnalysis, stitchTextStats, stitchWords, toSrt, toVtt, wordsToCues } from './stitching.js';
export type { Cue, Gap, ShardOutcome, StitchedAudio, TimedWord, TimelineEntry } from './stitching.js';
export { finalLineBreak, lineCount, textStats } from './text-stats.js';
export type { FinalLineBreak } from './text-stats.js';
export { findTask, leafTasks, NO_REQUIREMENTS, validateTaskGraph } from './task-graph.js';
export type { TaskGraph, TaskNode, TaskRequirements } from './task-graph.js';
export { ASSEMBLE_KIND, builtinTaskKinds, EXEC_KIND_PATTERN, TASK_KIND_PATTERN, taskKindInfo, workerTaskKinds } from './task-kinds.js';
export { DEFAULT_TENANT, parseTaskQueueName, RECOMMENDED_HASH_MAX_LISTPACK_VALUE, requirementsSignature, TENANT_PATTERN, taskQueueName } from './task-queue-name.js';
export type { TaskKindInfo, TaskPlacement } from './task-kinds.js';
export { checkDeclaredSteps, declaredStepSchema, declaredStepsSchema, STEP_ID_PATTERN } from './declared-pipeline.js';
export type { CheckedStep, DeclaredStep, DeclaredSteps } from './declared-pipeline.js';
export { checkTaskParams } from './task-params.js';
export {
  audioAnalyzeOutputSchema,
  audioSplitOutputSchema,
  audioStitchOutputSchema,
  audioTranscribeOutputSchema,
  fusionLlmOutputSchema,
  fusionReportOutputSchema,
  imageCaptionOutputSchema,
  imageClassifyOutputSchema,
  imageInspectOutputSchema,
  imageOcrOutputSchema,
  isBuiltinWorkerKind,
  parseTaskOutput,
  selftestSleepOutputSchema,
  textGenerateOutputSchema,
  textSplitOutputSchema,
  textStatsOutputSchema,
  textStitchOutputSchema,
  transcriptStitchOutputSchema,
  videoSplitOutputSchema,
  videoStitchOutputSchema,
} from './task-outputs.js';
export type {
  AudioAnalyzeOutput,
  AudioSegment,
  AudioSplitOutput,
  AudioStitchOutput,
  AudioTranscribeOutput,
  TextSplitOutput,
  TextStitchOutput,
  TranscriptStitchOutput,
  VideoSplitOutput,
  VideoStitchOutput,
  BuiltinWorkerKind,
  FusionLlmOutput,
  FusionReportOutput,
  ImageCaptionOutput,
  ImageClassifyOutput,
  ImageInspectOutput,
  ImageOcrOutput,
  SelftestSleepOutput,
  TaskOutputs,
  TextGenerateOutput,
  TextStatsOutput,
} from './task-outputs.js';
export { wordsOf } from './words.js';
export { issueParts, issuePathText, parseYamlSource, splitFieldPath, YamlSyntaxError } from './yaml-source.js';
export type { YamlSource } from './yaml-source.js';
export { ALL_METRICS, COORDINATOR_METRICS, DURATION_BUCKETS, FANOUT_BUCKETS, FAST_BUCKETS, FORBIDDEN_LABELS, metricConventionProblem, WORKER_METRICS } from './metrics-catalog.js';
export type { MetricSpec, MetricType } from './metrics-catalog.js';
export {
  canonicalJson,
  checkKnownAnswer,
  DEFAULT_VALIDATORS,
  findQuorum,
  iou,
  NEW_TRUST,
  numericallyEqual,
  outputsAgree,
  trustScore,
  trustStanding,
  validatorFor,
  wordSimilarity,
} from './verification.js';
export type { Box, Candidate, Quorum, TrustPolicy, TrustRecord, TrustStanding, ValidatorSpec } from './verification.js';
