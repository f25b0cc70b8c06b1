import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { JobStateName } from '@mmgrid/core';
import {
  AdminServiceClient,
  JobServiceClient,
  type ExplainJobResponse,
  type GetQueueStatsResponse,
  type Job,
  type JobEvent,
  type JobInput,
  type CreateTokenResponse,
  type ListTokensResponse,
  type ListWorkersResponse,
  type ReleaseWorkerResponse,
  type RevokeTokenResponse,
} from '@mmgrid/proto';
import { BlobClient, type ProgressCallback } from './blob-client.js';
import { resolveConnection, type ConnectionOptions, type ResolvedConnection } from './connection.js';
import { MmgridClientError, toClientError } from './errors.js';
import { saveResultFiles, type SavedFile, type SaveResultOptions } from './save-result.js';
import {
  jobStateValue,
  toEventView,
  toExplanationView,
  toJobView,
  toTokenView,
  type ExplanationView,
  type JobEventView,
  type JobView,
  type ResultView,
  type TokenView,
} from './views.js';

/** One input of a job: a file to upload, or inline text. */
export type SubmitInput = { readonly path: string; readonly name?: string } | { readonly text: string; readonly name: string };

export interface SubmitOptions {
  readonly prompt?: string;
  /** Built-in pipeline. @default "describe" */
  readonly pipeline?: string;
  /** -10..10. @default 0 */
  readonly priority?: number;
  readonly labels?: Readonly<Record<string, string>>;
  /** Pipeline parameters (see `mmgrid pipelines`). */
  readonly params?: Readonly<Record<string, string>>;
  /** Steps of a declared pipeline (a job file's `steps:`); see docs/job-files.md. */
  readonly steps?: unknown;
  /** Makes retries of this submission return the same job. @default a fresh UUID */
  readonly idempotencyKey?: string;
  readonly onUploadProgress?: (input: string, doneBytes: number, totalBytes: number) => void;
}

export interface ListOptions {
  readonly states?: readonly JobStateName[];
  readonly pipeline?: string;
  readonly tenant?: string;
  readonly pageSize?: number;
  readonly pageToken?: string;
}

export interface CreateTokenOptions {
  /** "submitter", "worker" or "admin". */
  readonly role: string;
  /** Submitter tokens only. @default the grid's default tenant */
  readonly tenant?: string;
  /** A label for people. @default none */
  readonly name?: string;
  /** How long the token is valid. @default for ever */
  readonly expiresInMs?: number;
}

export interface WatchOptions {
  /** Resume after this event (its `id`), instead of from the job's first event. @default the start */
  readonly afterEventId?: string;
  /** Stops following: the iteration ends (without an error) once it is aborted. @default none */
  readonly signal?: AbortSignal;
}

export interface WaitOptions {
  /** Called with each event of the job while waiting. @default none */
  readonly onEvent?: (event: JobEventView) => void;
  /** Stops waiting (the job goes on): the call rejects with an ABORTED error. @default none */
  readonly signal?: AbortSignal;
}

export interface ResultOptions {
  /** Wait for an unfinished job to end, instead of failing with NOT_READY. @default false */
  readonly wait?: boolean;
  /** Stops waiting (with `wait`): the call rejects with an ABORTED error. @default none */
  readonly signal?: AbortSignal;
}

/**
 * How long a watch keeps trying to resume after its stream dropped (a replica restarting or
 * shutting down, a network cut) before it fails with the last error; each event resets it.
 */
const WATCH_RESUME_MS = 60_000;
/** Pauses between tries to resume a watch: 250 ms, doubling, at most 5 s. */
const WATCH_PAUSE_MS = { first: 250, most: 5_000 } as const;
const SUBMIT_TRIES = 3;

/**
 * A client for one coordinator: submit jobs (uploading their files), follow them, fetch
 * results. Errors are MmgridClientError with a `code`.
 *
 * @example
 * ```ts
 * const client = new MmgridClient({ address: '127.0.0.1:7070' });
 * const job = await client.submit([{ path: 'photo.png' }, { path: 'talk.wav' }], { prompt: 'What is wrong?' });
 * for await (const event of client.watch(job.id)) console.log(event.type, event);
 * console.log((await client.getJob(job.id)).result?.summary);
 * client.close();
 * ```
 */
export class MmgridClient {
  readonly blobs: BlobClient;
  private readonly conn: ResolvedConnection;
  private readonly jobs: JobServiceClient;
  private readonly admin: AdminServiceClient;

  constructor(options: ConnectionOptions = {}) {
    this.conn = resolveConnection(options);
    this.jobs = new JobServiceClient(this.conn.address, this.conn.credentials, this.conn.channelOptions);
    this.admin = new AdminServiceClient(this.conn.address, this.conn.credentials, this.conn.channelOptions);
    this.blobs = new BlobClient(this.conn);
  }

  get address(): string {
    return this.conn.address;
  }

  /** Uploads the files (skipping bytes the coordinator has) and submits the job. */
  async submit(inputs: readonly SubmitInput[], options: SubmitOptions = {}): Promise<JobView> {
    const jobInputs: JobInput[] = [];
    for (const input of inputs) {
      if ('text' in input) {
        jobInputs.push({ name: input.name, source: { $case: 'text', text: input.text } });
        continue;
      }
      const name = input.name ?? path.basename(input.path);
      const progress: ProgressCallback | undefined = options.onUploadProgress ? (d, t) => options.onUploadProgress?.(name, d, t) : undefined;
      const { blob } = await this.blobs.uploadFile(input.path, { name, ...(progress ? { onProgress: progress } : {}) });
      jobInputs.push({ name, source: { $case: 'blob', blob } });
    }
    const request = {
      spec: {
        inputs: jobInputs,
        prompt: options.prompt ?? '',
        pipeline: options.pipeline ?? '',
        priority: options.priority ?? 0,
        labels: { ...(options.labels ?? {}) },
        params: { ...(options.params ?? {}) },
        stepsJson: options.steps === undefined ? '' : JSON.stringify(options.steps),
      },
      // One key for every try: a retry after a lost answer returns the job the first try made.
      idempotencyKey: options.idempotencyKey ?? randomUUID(),
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const job = await this.call<Job>((cb) => this.jobs.submitJob(request, this.conn.metadata(), (err, res) => cb(err, res?.job)));
        return toJobView(job);
      } catch (err) {
        if (!(err instanceof MmgridClientError) || err.code !== 'UNAVAILABLE' || attempt >= SUBMIT_TRIES) throw err;
        await delay(250 * 2 ** attempt);
      }
    }
  }

  async getJob(jobId: string): Promise<JobView> {
    return toJobView(await this.call<Job>((cb) => this.jobs.getJob({ jobId }, this.conn.metadata(), cb)));
  }

  async cancel(jobId: string, reason = ''): Promise<JobView> {
    return toJobView(await this.call<Job>((cb) => this.jobs.cancelJob({ jobId, reason }, this.conn.metadata(), cb)));
  }

  async list(options: ListOptions = {}): Promise<{ jobs: JobView[]; nextPageToken: string }> {
    const res = await this.call<{ jobs: Job[]; nextPageToken: string }>((cb) =>
      this.jobs.listJobs(
        {
          states: (options.states ?? []).map(jobStateValue),
          pipeline: options.pipeline ?? '',
          tenant: options.tenant ?? '',
          pageSize: options.pageSize ?? 0,
          pageToken: options.pageToken ?? '',
        },
        this.conn.metadata(),
        cb,
      ),
    );
    return { jobs: res.jobs.map(toJobView), nextPageToken: res.nextPageToken };
  }

  /**
   * The job's events from the start (or after `afterEventId`), then live until it ends. A
   * dropped stream (UNAVAILABLE: a replica shutting down or restarting, a network cut; or
   * CANCELLED by something on the way) is resumed where it stopped, so no event is lost or
   * repeated; after a minute without getting through, the last error is thrown. Aborting
   * `signal` ends the iteration early (breaking out of the loop does too).
   */
  async *watch(jobId: string, options: WatchOptions = {}): AsyncGenerator<JobEventView> {
    const signal = options.signal;
    let after = options.afterEventId ?? '';
    let retries = 0;
    let droppedAt = 0;
    while (!signal?.aborted) {
      const stream = this.jobs.watchJob({ jobId, afterEventId: after }, this.conn.metadata());
      const stop = (): void => stream.cancel();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const event of stream as AsyncIterable<JobEvent>) {
          retries = 0;
          droppedAt = 0;
          after = event.id;
          const view = toEventView(event);
          if (view) yield view;
          if (signal?.aborted) return;
        }
        return;
      } catch (err) {
        if (signal?.aborted) return;
        const e = toClientError(err, this.conn);
        droppedAt ||= Date.now();
        if ((e.code !== 'UNAVAILABLE' && e.code !== 'CANCELLED') || Date.now() - droppedAt >= WATCH_RESUME_MS) throw e;
        const pause = Math.min(WATCH_PAUSE_MS.most, WATCH_PAUSE_MS.first * 2 ** retries);
        retries += 1;
        try {
          await delay(pause, undefined, signal ? { signal } : {});
        } catch {
          return; // aborted while waiting to reconnect
        }
      } finally {
        signal?.removeEventListener('abort', stop);
        stream.cancel();
      }
    }
  }

  /**
   * Follows the job until it ends and returns it, result included. (The coordinator ends the
   * event stream when the job has ended; a job retried after it ended keeps going.)
   *
   * @throws MmgridClientError ABORTED when `signal` stopped the wait (the job goes on).
   */
  async waitForJob(jobId: string, options: WaitOptions | ((event: JobEventView) => void) = {}): Promise<JobView> {
    const { onEvent, signal } = typeof options === 'function' ? { onEvent: options, signal: undefined } : options;
    for await (const event of this.watch(jobId, signal ? { signal } : {})) onEvent?.(event);
    if (signal?.aborted) {
      throw new MmgridClientError('ABORTED', `stopped waiting for job ${jobId}: ${abortReason(signal)}; the job goes on`, { cause: signal.reason });
    }
    return this.getJob(jobId);
  }

  /**
   * The result of an ended job: its summary, document and blobs. A completed job's result may
   * be partial (`partial`, `coverage`: some inputs could not be read).
   *
   * @throws MmgridClientError NOT_READY when the job has not ended (and `wait` is not set),
   *   JOB_FAILED when it failed or was cancelled without a result (the message is its error),
   *   ABORTED when `signal` stopped the wait; `error.job` is the job as last seen.
   */
  async result(jobId: string, options: ResultOptions = {}): Promise<ResultView> {
    const job = options.wait ? await this.waitForJob(jobId, options.signal ? { signal: options.signal } : {}) : await this.getJob(jobId);
    return resultOf(job);
  }

  /**
   * Writes a job's result into `dir` (created if missing): result.json (the result document),
   * summary.txt and every blob the result refers to, each under its name made safe for a file
   * (a name two blobs share gets the blob's hash before its extension). Takes a job as
   * returned by getJob or waitForJob, or a job id (then fetched, not waited for).
   *
   * @throws MmgridClientError as `result()` does for a job without a result; INTEGRITY when
   *   a blob's bytes do not hash to its name.
   */
  async saveResult(job: JobView | string, dir: string, options: SaveResultOptions = {}): Promise<SavedFile[]> {
    const view = typeof job === 'string' ? await this.getJob(job) : job;
    return saveResultFiles(this.blobs, resultOf(view), dir, options);
  }

  /** Runs the failed tasks of an ended job again (and what consumes them). */
  async retry(jobId: string): Promise<JobView> {
    return toJobView(await this.call<Job>((cb) => this.jobs.retryJob({ jobId }, this.conn.metadata(), cb)));
  }

  /** Per task: why it waits, or where it runs. */
  async explain(jobId: string): Promise<ExplanationView[]> {
    const res = await this.call<ExplainJobResponse>((cb) => this.jobs.explainJob({ jobId }, this.conn.metadata(), cb));
    return res.tasks.map(toExplanationView);
  }

  async listWorkers(): Promise<ListWorkersResponse> {
    return this.call<ListWorkersResponse>((cb) => this.admin.listWorkers({}, this.conn.metadata(), cb));
  }

  /** Lifts a worker's quarantine (result verification) and clears its trust record (admin). */
  async releaseWorker(workerId: string): Promise<ReleaseWorkerResponse> {
    return this.call<ReleaseWorkerResponse>((cb) => this.admin.releaseWorker({ workerId }, this.conn.metadata(), cb));
  }

  async queueStats(): Promise<GetQueueStatsResponse> {
    return this.call<GetQueueStatsResponse>((cb) => this.admin.getQueueStats({}, this.conn.metadata(), cb));
  }

  /** Issues a token (admin). The token is in this answer only: keep it. */
  async createToken(options: CreateTokenOptions): Promise<{ token: string; info: TokenView }> {
    const res = await this.call<CreateTokenResponse>((cb) =>
      this.admin.createToken(
        { role: options.role, tenant: options.tenant ?? '', name: options.name ?? '', expiresInMs: options.expiresInMs ?? 0 },
        this.conn.metadata(),
        cb,
      ),
    );
    if (!res.info) throw new MmgridClientError('INTERNAL', 'the coordinator answered CreateToken without the token\'s record');
    return { token: res.token, info: toTokenView(res.info) };
  }

  /** The grid's tokens (admin), oldest first; revoked ones too when asked. */
  async listTokens(options: { includeRevoked?: boolean } = {}): Promise<TokenView[]> {
    const res = await this.call<ListTokensResponse>((cb) => this.admin.listTokens({ includeRevoked: options.includeRevoked ?? false }, this.conn.metadata(), cb));
    return res.tokens.map(toTokenView);
  }

  /** Revokes a token at once (admin); workers connected with it are disconnected. */
  async revokeToken(id: string): Promise<TokenView> {
    const res = await this.call<RevokeTokenResponse>((cb) => this.admin.revokeToken({ id }, this.conn.metadata(), cb));
    if (!res.info) throw new MmgridClientError('INTERNAL', 'the coordinator answered RevokeToken without the token\'s record');
    return toTokenView(res.info);
  }

  close(): void {
    this.jobs.close();
    this.admin.close();
    this.blobs.close();
  }

  private call<T>(invoke: (cb: (err: Error | null, res: T | undefined) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      invoke((err, res) => {
        if (err) reject(toClientError(err, this.conn));
        else if (res === undefined) reject(new MmgridClientError('INTERNAL', 'the coordinator sent an empty answer'));
        else resolve(res);
      });
    });
  }
}

/** A job's result, or the error that says why it has none. */
function resultOf(job: JobView): ResultView {
  if (job.result) return job.result;
  switch (job.state) {
    case 'queued':
    case 'running':
      throw new MmgridClientError('NOT_READY', `job ${job.id} is ${job.state} and has no result yet; wait for it (result with { wait: true }, or waitForJob)`, { job });
    case 'failed':
    case 'cancelled': {
      const verb = job.state === 'failed' ? 'failed' : 'was cancelled';
      throw new MmgridClientError('JOB_FAILED', `job ${job.id} ${verb} without a result: ${job.error?.message || 'no reason given'}`, { job });
    }
    case 'completed':
      throw new MmgridClientError('INTERNAL', `the coordinator reports job ${job.id} completed but sent no result`, { job });
  }
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== 'AbortError') return reason.message;
  return typeof reason === 'string' && reason !== '' ? reason : 'aborted';
}
