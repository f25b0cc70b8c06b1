import type { TaskHandler } from '../backend.js';
import { AudioAnalyzeHandler } from './audio-analyze.js';
import { FusionReportHandler } from './fusion-report.js';
import { ImageInspectHandler } from './image-inspect.js';
import { ImageOcrHandler } from './image-ocr.js';
import { SelftestSleepHandler } from './selftest-sleep.js';
import { AudioSplitHandler, TextSplitHandler, VideoSplitHandler } from './splitters.js';
import { TextStatsHandler } from './text-stats.js';

/** The CPU kinds every worker can run, with no GPU and no model server. */
export function builtinHandlers(): TaskHandler[] {
  return [new ImageOcrHandler(), new ImageInspectHandler(), new AudioAnalyzeHandler(), new TextStatsHandler(), new FusionReportHandler(), new SelftestSleepHandler(), new AudioSplitHandler(), new VideoSplitHandler(), new TextSplitHandler()];
}
