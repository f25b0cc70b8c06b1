import type { JobEventView, JobView, MmgridClient } from '@mmgrid/client';
import type { CommandContext } from './context.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { formatResult } from './format.js';
import { JobProgress } from './progress.js';

/**
 * Following a job until it ends (`submit --watch`, `retry --watch`, `watch`), and what Ctrl-C
 * does meanwhile: detach (the job keeps running) or, with --cancel-on-interrupt, cancel it.
 */

/** bars: cli-progress bars on stderr; lines: each event handed to `onEvent`; none: nothing. */
export type FollowMode = 'bars' | 'lines' | 'none';

export interface FollowOptions {
  readonly mode: FollowMode;
  /** Ctrl-C cancels the job instead of only detaching from it. */
  readonly cancelOnInterrupt: boolean;
  /** Shows one event in `lines` mode. */
  readonly onEvent?: (event: JobEventView) => void;
}

export type FollowOutcome =
  | { readonly kind: 'ended'; readonly job: JobView }
  | { readonly kind: 'detached'; readonly jobId: string }
  | { readonly kind: 'cancelled'; readonly job: JobView };

/** What Ctrl-C while following a job (--watch, --wait, watch) says. */
export function detachedMessage(jobId: string): string {
  return `detached from job ${jobId}; it keeps running. Re-attach with: mmgrid watch ${jobId}`;
}

/** The reason a job cancelled by Ctrl-C carries. */
export const INTERRUPT_REASON = 'interrupted by the submitter';

/** Bars only on a terminal, and never with --json (its lines stay plain) or --quiet. */
export function followMode(ctx: CommandContext, stream: NodeJS.WriteStream = process.stderr): FollowMode {
  if (ctx.options.quiet) return 'none';
  if (ctx.json || stream.isTTY !== true) return 'lines';
  return 'bars';
}

export async function followJob(client: MmgridClient, job: JobView, options: FollowOptions): Promise<FollowOutcome> {
  const progress = options.mode === 'bars' ? new JobProgress(job.id, job) : undefined;
  const stopWatching = new AbortController();
  let interrupts = 0;
  let interrupt = (): void => undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => (interrupt = () => resolve('interrupted')));
  const onSigint = (): void => {
    interrupts += 1;
    if (interrupts > 1) {
      // A second Ctrl-C while cancelling (or detaching) hangs: leave at once.
      progress?.stop();
      process.stderr.write('\n');
      process.exit(ExitCode.DETACHED);
    }
    interrupt();
  };
  process.on('SIGINT', onSigint);
  try {
    // Aborted on Ctrl-C: the event stream is cancelled, or it would hold the process open
    // until the job ends.
    const events = client.watch(job.id, { signal: stopWatching.signal })[Symbol.asyncIterator]();
    for (;;) {
      const next = events.next();
      // After Ctrl-C the pending read fails when the connection closes; nobody waits for it.
      next.catch(() => undefined);
      const step = await Promise.race([next, interrupted]);
      if (step === 'interrupted') {
        stopWatching.abort();
        progress?.stop();
        if (!options.cancelOnInterrupt) return { kind: 'detached', jobId: job.id };
        return { kind: 'cancelled', job: await client.cancel(job.id, INTERRUPT_REASON) };
      }
      if (step.done) break;
      const event = step.value;
      if (progress) {
        // A task not known yet (a shard a split task just made) or a change of the job's
        // state: fetch the job again for the full picture.
        if (progress.onEvent(event)) progress.refresh(await client.getJob(job.id));
      } else if (options.mode === 'lines') {
        options.onEvent?.(event);
      }
    }
    const done = await client.getJob(job.id);
    progress?.refresh(done);
    return { kind: 'ended', job: done };
  } finally {
    stopWatching.abort();
    progress?.stop();
    process.removeListener('SIGINT', onSigint);
  }
}

/**
 * What the user is told once following ends, and the exit code: the result (or the job as
 * JSON) when `printResult`, the re-attach hint after a detach, a note after a cancel.
 */
export function reportOutcome(ctx: CommandContext, outcome: FollowOutcome, printResult: boolean): ExitCodeValue {
  if (outcome.kind === 'detached') {
    process.stderr.write(`mmgrid: ${detachedMessage(outcome.jobId)}\n`);
    return ExitCode.DETACHED;
  }
  if (outcome.kind === 'cancelled') process.stderr.write(`mmgrid: cancelled job ${outcome.job.id} (${INTERRUPT_REASON})\n`);
  if (printResult) {
    if (ctx.json) ctx.printJson(outcome.job);
    else ctx.print(formatResult(outcome.job));
  }
  if (outcome.kind === 'cancelled') return ExitCode.JOB_FAILED;
  return exitCodeOf(outcome.job);
}

/** Exit code for a finished (or unfinished) job. */
export function exitCodeOf(job: JobView): ExitCodeValue {
  if (job.state === 'completed') return ExitCode.OK;
  if (job.state === 'failed' || job.state === 'cancelled') return ExitCode.JOB_FAILED;
  return ExitCode.NOT_READY;
}
