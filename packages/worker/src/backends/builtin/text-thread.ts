// A text thread (run by Piscina): segmenting a long text takes its thread for seconds, so it
// happens here while the worker's own thread keeps heartbeating and running other tasks.
import { doTextJob, type TextJob } from './text-work.js';

export default function run(job: TextJob): ReturnType<typeof doTextJob> {
  return doTextJob(job);
}
