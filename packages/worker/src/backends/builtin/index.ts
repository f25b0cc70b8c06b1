import type { TaskHandler } from '../backend.js';
import { AudioAnalyzeHandler } from './audio-analyze.js';
import { AudioTranscribeHandler, type TranscribeBackendOptions } from './audio-transcribe.js';
import { FusionReportHandler } from './fusion-report.js';
import { ImageInspectHandler } from './image-inspect.js';
import { ImageOcrHandler } from './image-ocr.js';
import { SelftestSleepHandler } from './selftest-sleep.js';
import { AudioSplitHandler, TextSplitHandler, VideoSplitHandler } from './splitters.js';
import { TextStatsHandler } from './text-stats.js';
import { textThreads } from './text-threads.js';

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
  // One pool of threads for the text kinds' segmenting, so it never holds up the worker's thread.
  const threads = textThreads();
  const handlers: TaskHandler[] = [
    new ImageOcrHandler(),
    new ImageInspectHandler(),
    new AudioAnalyzeHandler(),
    new TextStatsHandler(threads),
    new FusionReportHandler(),
    new SelftestSleepHandler(),
    new AudioSplitHandler(),
    new VideoSplitHandler(),
    new TextSplitHandler(threads),
  ];
  if (backends.transcribe) handlers.push(new AudioTranscribeHandler(backends.transcribe));
  return handlers;
}
