import type { JobView } from '@mmgrid/client';
import type { JobStateName } from '@mmgrid/core';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { formatJobList, formatQueues } from '../fleet-format.js';

/** The states `mmgrid list --state` takes, in the order a job goes through them. */
export const JOB_STATES: readonly JobStateName[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

/** Jobs a page when --limit is not given. */
export const DEFAULT_LIST_LIMIT = 20;

export interface ListFlags {
  /** As given: repeated, each possibly comma-separated. */
  readonly state?: readonly string[];
  readonly pipeline?: string;
  readonly limit?: number;
  readonly pageToken?: string;
  readonly all?: boolean;
}

/** The states named by --state (repeatable, comma-separated), checked; empty for every state. */
export function parseStates(given: readonly string[] = []): JobStateName[] {
  const states: JobStateName[] = [];
  for (const part of given.flatMap((s) => s.split(','))) {
    const name = part.trim().toLowerCase();
    if (name === '') continue;
    const state = JOB_STATES.find((s) => s === name);
    if (state === undefined) throw new CliError(`--state "${part.trim()}" is not a job state; the states are ${JOB_STATES.join(', ')}`, ExitCode.USAGE);
    if (!states.includes(state)) states.push(state);
  }
  return states;
}

/** `mmgrid list`: the caller's jobs (an admin's: --tenant's), newest first, a page at a time or --all. */
export async function listJobs(ctx: CommandContext, flags: ListFlags): Promise<ExitCodeValue> {
  const states = parseStates(flags.state);
  const client = ctx.connect();
  const limit = flags.limit ?? DEFAULT_LIST_LIMIT;
  const jobs: JobView[] = [];
  let pageToken = flags.pageToken ?? '';
  for (;;) {
    const page = await client.list({
      states,
      ...(flags.pipeline !== undefined ? { pipeline: flags.pipeline } : {}),
      ...(ctx.options.tenant !== undefined ? { tenant: ctx.options.tenant } : {}),
      pageSize: limit,
      pageToken,
    });
    jobs.push(...page.jobs);
    pageToken = page.nextPageToken;
    if (!flags.all || pageToken === '') break;
  }
  if (ctx.json) {
    ctx.printJson({ jobs, nextPageToken: pageToken === '' ? null : pageToken });
    return ExitCode.OK;
  }
  ctx.print(formatJobList(jobs, { tenant: ctx.options.tenant !== undefined, nowMs: Date.now() }));
  if (pageToken !== '') ctx.note(`more: ${nextPageCommand(states, flags, pageToken)}`);
  return ExitCode.OK;
}

/** The command that lists the next page: the same filters, and the token. */
function nextPageCommand(states: readonly JobStateName[], flags: ListFlags, pageToken: string): string {
  const words = ['mmgrid', 'list'];
  if (states.length > 0) words.push('--state', states.join(','));
  if (flags.pipeline !== undefined) words.push('--pipeline', quote(flags.pipeline));
  if (flags.limit !== undefined) words.push('--limit', String(flags.limit));
  words.push('--page-token', pageToken);
  return words.join(' ');
}

function quote(word: string): string {
  return /^[\w.@:/-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `mmgrid queues`: the task queues (admin), by task kind or --by-queue. */
export async function listQueues(ctx: CommandContext, flags: { byQueue?: boolean }): Promise<ExitCodeValue> {
  const { queues } = await ctx.connect().queueStats();
  if (ctx.json) ctx.printJson(queues);
  else ctx.print(formatQueues(queues, { byQueue: flags.byQueue === true }));
  return ExitCode.OK;
}
