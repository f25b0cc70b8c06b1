import type { TaskHandler } from '../backend.js';
import { AudioAnalyzeHandler } from './audio-analyze.js';
import { AudioTranscribeHandler, type TranscribeBackendOptions } from './audio-transcribe.js';
import { FusionReportHandler } from './fusion-report.js';
import { ImageInspectHandler } from './image-inspect.js';
import { ImageOcrHandler } from './image-ocr.js';
import { SelftestSleepHandler } from './selftest-sleep.js';
import { AudioSplitHandler, TextSplitHandler, VideoSplitHandler } from './splitters.js';
import { TextStatsHandler } from './text-stats.js';

/** Model servers on the worker's machine that some kinds need. */
export interface BackendOptions {
  /** A speech-to-text server: the worker then runs audio.transcribe. */
  readonly transcribe?: TranscribeBackendOptions | undefined;
}

/**
 * The kinds this worker can run: the CPU kinds every worker runs with no GPU and no model
 * server, and those whose server is given.
 *
 * @throws InvalidOptionError for a server URL that is not an http(s) URL.
 */
export function builtinHandlers(backends: BackendOptions = {}): TaskHandler[] {
  const handlers: TaskHandler[] = [
    new ImageOcrHandler(),
    new ImageInspectHandler(),
    new AudioAnalyzeHandler(),
    new TextStatsHandler(),
    new FusionReportHandler(),
    new SelftestSleepHandler(),
    new AudioSplitHandler(),
    new VideoSplitHandler(),
    new TextSplitHandler(),
  ];
  if (backends.transcribe) handlers.push(new AudioTranscribeHandler(backends.transcribe));
  return handlers;
}
