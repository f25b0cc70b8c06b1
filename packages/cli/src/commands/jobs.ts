import { access } from 'node:fs/promises';
import { MmgridClientError, type JobView } from '@mmgrid/client';
import { pipelineNames } from '@mmgrid/core';
import type { CommandContext } from '../context.js';
import { untilInterrupted } from '../detach.js';
import { CliError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { exitCodeOf, followJob, followMode, reportOutcome } from '../follow.js';
import { formatEvent, formatExplanation, formatResult, formatStatus } from '../format.js';
import { loadJobFile, locateServerError, maxJobFileBytes } from '../job-file.js';

export interface SubmitFlags {
  readonly file?: string;
  readonly prompt?: string;
  readonly pipeline?: string;
  readonly priority?: number;
  readonly label?: readonly string[];
  readonly param?: readonly string[];
  readonly wait?: boolean;
  readonly idempotencyKey?: string;
  readonly watch?: boolean;
  readonly cancelOnInterrupt?: boolean;
}

export { exitCodeOf };

/** `--watch` and `--cancel-on-interrupt` (submit, retry, watch). */
export interface WatchFlags {
  readonly watch?: boolean;
  readonly cancelOnInterrupt?: boolean;
}

function parsePairs(flag: string, pairs: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`${flag} "${pair}" is not KEY=VALUE`, ExitCode.USAGE);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export async function submit(ctx: CommandContext, files: readonly string[], flags: SubmitFlags): Promise<ExitCodeValue> {
  if (flags.file !== undefined && flags.pipeline !== undefined) {
    // The file decides: its pipeline: or its steps:. (-p/--prompt, by contrast, replaces the file's prompt.)
    throw new CliError('--pipeline cannot be combined with -f: the job file names its pipeline (pipeline:) or its steps (steps:)', ExitCode.USAGE);
  }
  if (flags.pipeline !== undefined && !pipelineNames().includes(flags.pipeline)) {
    // Before any upload: the built-in pipelines are the same in the CLI and the coordinator.
    throw new CliError(`unknown pipeline "${flags.pipeline}": the built-in pipelines are ${pipelineNames().join(', ')} (see: mmgrid pipelines)`, ExitCode.USAGE);
  }
  refuseLoneCancelOnInterrupt(flags);
  for (const file of files) {
    try {
      await access(file);
    } catch {
      throw new CliError(`no such file: ${file}`, ExitCode.USAGE);
    }
  }
  const jobFile = flags.file ? await loadJobFile(flags.file, maxJobFileBytes(process.env)) : undefined;
  if (!jobFile && files.length === 0 && !flags.prompt && (flags.pipeline ?? 'describe') === 'describe') {
    throw new CliError('nothing to submit: give one or more files and/or --prompt TEXT, or a job file with -f', ExitCode.USAGE);
  }
  const client = ctx.connect();
  const fromFile = jobFile?.options ?? {};
  const params = { ...(fromFile.params ?? {}), ...parsePairs('--param', flags.param) };
  const labels = { ...(fromFile.labels ?? {}), ...parsePairs('--label', flags.label) };
  let job: JobView;
  try {
    job = await client.submit([...(jobFile?.inputs ?? []), ...files.map((f) => ({ path: f }))], {
      ...fromFile,
      ...(flags.prompt !== undefined ? { prompt: flags.prompt } : {}),
      ...(flags.pipeline !== undefined ? { pipeline: flags.pipeline } : {}),
      ...(flags.priority !== undefined ? { priority: flags.priority } : {}),
      ...(flags.idempotencyKey !== undefined ? { idempotencyKey: flags.idempotencyKey } : {}),
      labels,
      params,
      onUploadProgress: (name, done, total) => {
        if (done === total) ctx.note(`uploaded ${name} (${total} bytes)`);
      },
    });
  } catch (err) {
    // The coordinator names the field it refused; point at its line in the job file.
    if (jobFile && err instanceof MmgridClientError && err.code === 'INVALID_ARGUMENT') {
      throw new CliError(locateServerError(jobFile, err.message), ExitCode.USAGE, { cause: err });
    }
    throw err;
  }
  if (flags.watch) {
    ctx.note(`submitted job ${job.id} (${job.tasks.length} tasks)`);
    return followAndReport(ctx, job, flags);
  }
  if (!flags.wait) {
    if (ctx.json) ctx.printJson(job);
    else {
      ctx.print(job.id);
      ctx.note(`submitted job ${job.id} (${job.tasks.length} tasks). Follow it with: mmgrid status ${job.id}`);
    }
    return ExitCode.OK;
  }
  ctx.note(`submitted job ${job.id} (${job.tasks.length} tasks); waiting for it`);
  const done = await untilInterrupted(job.id, (signal) => client.waitForJob(job.id, { onEvent: (event) => ctx.note(formatEvent(event)), signal }));
  if (ctx.json) ctx.printJson(done);
  else ctx.print(formatResult(done));
  return exitCodeOf(done);
}

export async function status(ctx: CommandContext, jobId: string): Promise<ExitCodeValue> {
  const job = await ctx.connect().getJob(jobId);
  if (ctx.json) ctx.printJson(job);
  else ctx.print(formatStatus(job));
  return ExitCode.OK;
}

function refuseLoneCancelOnInterrupt(flags: WatchFlags & { readonly wait?: boolean }): void {
  if (flags.cancelOnInterrupt && !flags.watch) throw new CliError('--cancel-on-interrupt works only with --watch (Ctrl-C while following the job)', ExitCode.USAGE);
  if (flags.watch && flags.wait) throw new CliError('give -w/--wait (event lines, then the result) or --watch (progress bars, then the result), not both', ExitCode.USAGE);
}

/** Follows a job with bars (or plain event lines on stderr), then prints its result. */
async function followAndReport(ctx: CommandContext, job: JobView, flags: WatchFlags): Promise<ExitCodeValue> {
  const outcome = await followJob(ctx.connect(), job, {
    mode: followMode(ctx),
    cancelOnInterrupt: flags.cancelOnInterrupt === true,
    onEvent: (event) => ctx.note(formatEvent(event)),
  });
  return reportOutcome(ctx, outcome, true);
}

export async function watch(ctx: CommandContext, jobId: string, flags: WatchFlags = {}): Promise<ExitCodeValue> {
  const client = ctx.connect();
  const job = await client.getJob(jobId);
  // On a terminal: bars, then the result. Otherwise the events themselves are the data, on stdout.
  if (!ctx.json && process.stdout.isTTY === true && process.stderr.isTTY === true) return followAndReport(ctx, job, flags);
  const outcome = await followJob(client, job, {
    mode: 'lines',
    cancelOnInterrupt: flags.cancelOnInterrupt === true,
    onEvent: (event) => {
      if (ctx.json) process.stdout.write(`${JSON.stringify(event)}\n`);
      else ctx.print(formatEvent(event));
    },
  });
  return reportOutcome(ctx, outcome, false);
}

export async function cancel(ctx: CommandContext, jobId: string, reason: string | undefined): Promise<ExitCodeValue> {
  const job = await ctx.connect().cancel(jobId, reason ?? '');
  if (ctx.json) ctx.printJson(job);
  else ctx.print(`job ${job.id} is ${job.state}`);
  return ExitCode.OK;
}

export async function result(ctx: CommandContext, jobId: string, flags: { output?: string; wait?: boolean }): Promise<ExitCodeValue> {
  const client = ctx.connect();
  const job = flags.wait ? await untilInterrupted(jobId, (signal) => client.waitForJob(jobId, { signal })) : await client.getJob(jobId);
  if (!job.result) {
    if (job.state === 'queued' || job.state === 'running') {
      throw new CliError(`job ${job.id} is ${job.state}; wait for it with: mmgrid result ${job.id} --wait`, ExitCode.NOT_READY);
    }
    if (ctx.json) ctx.printJson(job);
    else ctx.print(formatResult(job));
    return exitCodeOf(job);
  }
  if (flags.output) {
    await client.saveResult(job, flags.output, { onFile: (file) => ctx.note(`wrote ${file.path}`) });
  }
  if (ctx.json) ctx.printJson(job);
  else ctx.print(formatResult(job));
  return exitCodeOf(job);
}

export async function retry(ctx: CommandContext, jobId: string, wait: boolean, flags: WatchFlags = {}): Promise<ExitCodeValue> {
  refuseLoneCancelOnInterrupt({ ...flags, wait });
  const client = ctx.connect();
  const job = await client.retry(jobId);
  const failed = job.tasks.filter((t) => t.state === 'queued' || t.state === 'blocked').length;
  if (flags.watch) {
    ctx.note(`job ${job.id} retried (${failed} task${failed === 1 ? '' : 's'} to run)`);
    return followAndReport(ctx, job, flags);
  }
  if (!wait) {
    if (ctx.json) ctx.printJson(job);
    else ctx.print(`job ${job.id} is ${job.state} again (retry ${job.generation}): ${failed} task${failed === 1 ? '' : 's'} to run`);
    return ExitCode.OK;
  }
  ctx.note(`job ${job.id} retried (${failed} tasks to run); waiting for it`);
  const done = await untilInterrupted(job.id, (signal) => client.waitForJob(job.id, { onEvent: (event) => ctx.note(formatEvent(event)), signal }));
  if (ctx.json) ctx.printJson(done);
  else ctx.print(formatResult(done));
  return exitCodeOf(done);
}

export async function explain(ctx: CommandContext, jobId: string): Promise<ExitCodeValue> {
  const tasks = await ctx.connect().explain(jobId);
  if (ctx.json) {
    ctx.printJson(tasks);
    return ExitCode.OK;
  }
  ctx.print(formatExplanation(tasks));
  return ExitCode.OK;
}
