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
import { jobStateValue, toEventView, toExplanationView, toJobView, toTokenView, type ExplanationView, type JobEventView, type JobView, type TokenView } from './views.js';

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

const WATCH_RETRIES = 5;
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
   * dropped stream is resumed where it stopped, so no event is lost or repeated.
   */
  async *watch(jobId: string, options: { afterEventId?: string } = {}): AsyncGenerator<JobEventView> {
    let after = options.afterEventId ?? '';
    let retries = 0;
    for (;;) {
      const stream = this.jobs.watchJob({ jobId, afterEventId: after }, this.conn.metadata());
      try {
        for await (const event of stream as AsyncIterable<JobEvent>) {
          retries = 0;
          after = event.id;
          const view = toEventView(event);
          if (view) yield view;
        }
        return;
      } catch (err) {
        const e = toClientError(err, this.conn);
        if (e.code !== 'UNAVAILABLE' || retries >= WATCH_RETRIES) throw e;
        retries += 1;
        await delay(200 * 2 ** retries);
      } finally {
        stream.cancel();
      }
    }
  }

  /**
   * Follows the job until it ends and returns it, result included. (The coordinator ends the
   * event stream when the job has ended; a job retried after it ended keeps going.)
   */
  async waitForJob(jobId: string, onEvent?: (event: JobEventView) => void): Promise<JobView> {
    for await (const event of this.watch(jobId)) onEvent?.(event);
    return this.getJob(jobId);
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
