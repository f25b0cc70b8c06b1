/**
 * @mmgrid/worker — the worker daemon GPU owners run: it connects out to a coordinator, offers
 * task kinds with slots, runs tasks through handlers, and reconnects by itself.
 *
 * @example
 * ```ts
 * import { WorkerDaemon, builtinHandlers, resolveWorkerOptions, createLogger, startMetricsServer } from '@mmgrid/worker';
 *
 * const handlers = builtinHandlers();
 * const options = resolveWorkerOptions({ coordinator: '127.0.0.1:7070' }, handlers.map((h) => h.kind), 'my-box');
 * const daemon = new WorkerDaemon(options, handlers, createLogger('worker'));
 * // Optional: GET /metrics (Prometheus) and /healthz for the machine's owner.
 * if (options.metricsListen) await startMetricsServer(options.metricsListen, daemon.metrics, () => daemon.health);
 * await daemon.start();
 * process.on('SIGTERM', () => void daemon.drain());
 * ```
 */
export { AudioAnalyzer, DEFAULT_AUDIO_ANALYSIS, SILENCE_DBFS } from './audio/audio-analysis.js';
export type { AudioAnalysisOptions, AudioStats } from './audio/audio-analysis.js';
export type { TaskContext, TaskHandler } from './backends/backend.js';
export { builtinHandlers } from './backends/builtin/index.js';
export type { BackendOptions } from './backends/builtin/index.js';
export type { TranscribeBackendOptions } from './backends/builtin/audio-transcribe.js';
export { InputDecodeError, MetricsListenError, TaskFailedError, ToolMissingError } from './errors.js';
export type { TaskFailureCode } from './errors.js';
export { createLogger } from './logger.js';
export { WorkerMetrics } from './metrics.js';
export type { BlobCacheResult, WorkerInstruments, WorkerMetricsOptions, WorkerTaskOutcome } from './metrics.js';
export { startMetricsServer } from './metrics-server.js';
export type { MetricsServer, WorkerHealth } from './metrics-server.js';
export { WorkerDaemon } from './worker-daemon.js';
export type { WorkerDaemonEvents } from './worker-daemon.js';
export { parseCudaVersion, parseQueryGpu, probeNvidiaGpus, QUERY_FIELDS } from './gpu/nvidia-smi.js';
export type { NvidiaGpu, ProbeResult } from './gpu/nvidia-smi.js';
export { DEFAULT_METRICS_LISTEN, defaultSlots, defaultStateDir, parseBytes, resolveWorkerOptions } from './worker-options.js';
export type { ResolvedWorkerOptions, WorkerOptions } from './worker-options.js';
