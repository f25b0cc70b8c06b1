import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
  type CompletedPart,
  type GetObjectCommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { InvalidOptionError, isSha256 } from '@mmgrid/core';
import { verifiedChunks, type BlobStat, type BlobStore, type PutBlobResult } from './blob-store.js';
import { BadRequestError, BlobNotFoundError, CoordinatorError } from './errors.js';
import { limitExceeded } from './limits.js';

export interface S3BlobStoreOptions {
  /** An S3-compatible server (MinIO, Ceph, ...); absent for AWS S3 itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Put before every key, e.g. `"mmgrid/blobs/"`; may be empty. */
  prefix: string;
  /** Both or neither; when absent the SDK's default credential chain (AWS_* env vars, profiles, roles) is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (most self-hosted servers need it). */
  forcePathStyle: boolean;
  maxBlobBytes: number;
}

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last) and its most parts per multipart upload. */
const MIN_PART_BYTES = 5 * MiB;
const MAX_PARTS = 10_000;
/** Parts uploaded at once; with the part being filled, bounds the memory one put holds. */
const UPLOAD_QUEUE = 2;
/** The largest object one CopyObject may copy; larger ones are copied in parts. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB;
const COPY_PART_BYTES = 1024 * MiB;

/**
 * Blobs in an S3 bucket (or any S3-compatible server), one object per blob at
 * `<prefix><sha[0:2]>/<sha>`. Uploads stream through a multipart upload to a temporary key
 * while being hashed; only verified bytes are copied to the blob's key, so a reader never sees
 * a partial or wrong object there.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;

  constructor(private readonly options: S3BlobStoreOptions) {
    const { endpoint, region, bucket, prefix, accessKeyId, secretAccessKey, maxBlobBytes } = options;
    if (!region) throw new InvalidOptionError('region', 'a non-empty AWS region', region);
    if (!bucket) throw new InvalidOptionError('bucket', 'a non-empty bucket name', bucket);
    if (prefix.startsWith('/')) throw new InvalidOptionError('prefix', 'a key prefix that does not start with "/"', prefix);
    if (!Number.isSafeInteger(maxBlobBytes) || maxBlobBytes < 1) {
      throw new InvalidOptionError('maxBlobBytes', 'a positive whole number of bytes', maxBlobBytes);
    }
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      throw new InvalidOptionError('accessKeyId/secretAccessKey', 'given both or neither', accessKeyId === undefined ? 'only secretAccessKey' : 'only accessKeyId');
    }
    if (endpoint !== undefined) checkEndpoint(endpoint);
    const config: S3ClientConfig = { region, forcePathStyle: options.forcePathStyle };
    if (endpoint !== undefined) {
      config.endpoint = endpoint;
      // Self-hosted servers often lack the SDK's newer default checksums; the store checks
      // SHA-256 itself, so send checksums only where the operation requires one.
      config.requestChecksumCalculation = 'WHEN_REQUIRED';
      config.responseChecksumValidation = 'WHEN_REQUIRED';
    }
    if (accessKeyId !== undefined && secretAccessKey !== undefined) config.credentials = { accessKeyId, secretAccessKey };
    this.client = new S3Client(config);
  }

  /**
   * A store from a URL: `s3://bucket/prefix/?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true`.
   * The path (if any) is the key prefix, as a folder. `region` defaults to AWS_REGION (then
   * us-east-1); `forcePathStyle` defaults to true when an endpoint is given. Credentials come
   * from `s3://KEY:SECRET@bucket/...` or else from the SDK's default chain (AWS_ACCESS_KEY_ID ...).
   */
  static fromUrl(url: string, maxBlobBytes: number): S3BlobStore {
    const allowed = 's3://bucket[/prefix/][?endpoint=URL&region=REGION&forcePathStyle=true|false]';
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new InvalidOptionError('blob store URL', allowed, url);
    }
    const shown = redact(parsed);
    if (parsed.protocol !== 's3:') throw new InvalidOptionError('blob store URL', `${allowed} (an s3:// URL)`, shown);
    const bucket = parsed.hostname;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new InvalidOptionError('blob store URL', `${allowed} with a bucket name of 3-63 lower-case letters, digits, dots and hyphens`, shown);
    }
    if (parsed.port) throw new InvalidOptionError('blob store URL', `${allowed} (put the server's address in ?endpoint=)`, shown);
    if (parsed.hash) throw new InvalidOptionError('blob store URL', `${allowed} without a #fragment`, shown);
    let prefix: string;
    try {
      prefix = decodeURIComponent(parsed.pathname.replace(/^\/+/, ''));
    } catch {
      throw new InvalidOptionError('blob store URL', `${allowed} with a well-formed path`, shown);
    }
    if (prefix && !prefix.endsWith('/')) prefix += '/';

    const known = new Set(['endpoint', 'region', 'forcePathStyle']);
    for (const key of parsed.searchParams.keys()) {
      if (!known.has(key)) throw new InvalidOptionError('blob store URL', `${allowed}; "${key}" is not a known parameter`, shown);
    }
    for (const key of known) {
      if (parsed.searchParams.getAll(key).length > 1) throw new InvalidOptionError('blob store URL', `${allowed} with "${key}" at most once`, shown);
    }
    const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
    if (endpoint !== undefined) {
      try {
        checkEndpoint(endpoint);
      } catch {
        throw new InvalidOptionError('blob store URL', `${allowed} with an http:// or https:// endpoint`, shown);
      }
    }
    const region = parsed.searchParams.get('region') || process.env['AWS_REGION'] || process.env['AWS_DEFAULT_REGION'] || 'us-east-1';
    const pathStyle = parsed.searchParams.get('forcePathStyle');
    if (pathStyle !== null && pathStyle !== 'true' && pathStyle !== 'false') {
      throw new InvalidOptionError('blob store URL', `${allowed} with forcePathStyle=true or forcePathStyle=false`, shown);
    }
    const forcePathStyle = pathStyle === null ? endpoint !== undefined : pathStyle === 'true';

    const options: S3BlobStoreOptions = { region, bucket, prefix, forcePathStyle, maxBlobBytes };
    if (endpoint !== undefined) options.endpoint = endpoint;
    if (parsed.username || parsed.password) {
      if (!parsed.username || !parsed.password) {
        throw new InvalidOptionError('blob store URL', `${allowed}, with credentials as KEY:SECRET@ (both) or none`, shown);
      }
      options.accessKeyId = decodeURIComponent(parsed.username);
      options.secretAccessKey = decodeURIComponent(parsed.password);
    }
    return new S3BlobStore(options);
  }

  /** Checks the bucket can be reached with these credentials. */
  async init(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
    } catch (err) {
      const where = this.options.endpoint ?? `AWS S3 (${this.options.region})`;
      const status = httpStatusOf(err);
      const why = status === 404 ? 'it does not exist' : status === 403 ? 'access denied' : describe(err);
      throw new Error(`S3 blob store: cannot reach bucket "${this.options.bucket}" at ${where}: ${why}`, { cause: err });
    }
  }

  /** Frees the client's connections. */
  close(): void {
    this.client.destroy();
  }

  /**
   * `err` as the caller should see it: when S3 could not be reached, or answered that it cannot
   * serve now (5xx, throttling), a CoordinatorError UNAVAILABLE that names the blob store (the
   * SDK has already retried); anything else as it is.
   */
  private unreachable(err: unknown): unknown {
    if (err instanceof CoordinatorError || !isUnavailable(err)) return err;
    const where = this.options.endpoint ?? `AWS S3 (${this.options.region})`;
    return new CoordinatorError('UNAVAILABLE', `the blob store (bucket "${this.options.bucket}" at ${where}) cannot be reached: ${describe(err)}; retry shortly`, { cause: err });
  }

  private keyOf(sha256: string): string {
    if (!isSha256(sha256)) throw new BadRequestError(`"${sha256}" is not a SHA-256 (64 lower-case hex characters)`);
    return `${this.options.prefix}${sha256.slice(0, 2)}/${sha256}`;
  }

  async stat(sha256: string): Promise<BlobStat | undefined> {
    const size = await this.sizeAt(this.keyOf(sha256));
    return size === undefined ? undefined : { sha256, size };
  }

  private async sizeAt(key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.unreachable(err);
    }
  }

  async put(declared: BlobStat, chunks: AsyncIterable<Uint8Array>): Promise<PutBlobResult> {
    const finalKey = this.keyOf(declared.sha256);
    const max = this.options.maxBlobBytes;
    if (declared.size > max) {
      throw limitExceeded('maxBlobBytes', declared.size, max, `the blob has ${declared.size} bytes`, 'bytes');
    }
    const tmpKey = `${this.options.prefix}tmp/${declared.sha256}.${randomBytes(6).toString('hex')}`;
    let size: number;
    try {
      size = await this.uploadVerified(declared, chunks, tmpKey);
    } catch (err) {
      throw this.unreachable(err);
    }
    try {
      if ((await this.sizeAt(finalKey)) !== undefined) {
        return { stat: { sha256: declared.sha256, size }, deduplicated: true };
      }
      await this.copy(tmpKey, finalKey, size);
      return { stat: { sha256: declared.sha256, size }, deduplicated: false };
    } catch (err) {
      throw this.unreachable(err);
    } finally {
      await this.deleteQuietly(tmpKey);
    }
  }

  /** Streams `chunks` to `tmpKey`, checking size and hash; on any failure nothing is left there. */
  private async uploadVerified(declared: BlobStat, chunks: AsyncIterable<Uint8Array>, tmpKey: string): Promise<number> {
    const body = new PassThrough({ highWaterMark: 1 * MiB });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.options.bucket, Key: tmpKey, Body: body, ContentType: 'application/octet-stream' },
      partSize: Math.max(MIN_PART_BYTES, Math.ceil(declared.size / MAX_PARTS)),
      queueSize: UPLOAD_QUEUE,
      leavePartsOnError: false,
    });
    let uploadFailure: { error: unknown } | undefined;
    // Set from the upload's callback: read through a call so that narrowing does not stick.
    const failed = (): { error: unknown } | undefined => uploadFailure;
    const uploaded = upload.done().then(
      () => undefined,
      (error: unknown) => {
        uploadFailure = { error };
        // Wakes a writer waiting for 'drain' that will never come.
        body.destroy();
      },
    );
    const size = declared.size;
    try {
      for await (const chunk of verifiedChunks(declared, chunks)) {
        let failure = failed();
        if (failure) throw failure.error;
        if (!body.write(chunk)) await drained(body);
        failure = failed();
        if (failure) throw failure.error;
      }
    } catch (err) {
      // The body never ends, so the upload cannot complete: failing the body makes lib-storage
      // abort the multipart upload (or skip the single PUT) before `uploaded` settles.
      body.destroy(err instanceof Error ? err : new Error(String(err)));
      await uploaded;
      await this.deleteQuietly(tmpKey);
      throw err;
    }
    body.end();
    await uploaded;
    const failure = failed();
    if (failure) {
      await this.deleteQuietly(tmpKey);
      throw failure.error;
    }
    return size;
  }

  private async copy(from: string, to: string, size: number): Promise<void> {
    const { bucket } = this.options;
    const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= MAX_SINGLE_COPY_BYTES) {
      await this.client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source, ContentType: 'application/octet-stream' }));
      return;
    }
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, ContentType: 'application/octet-stream' }));
    if (!UploadId) throw new Error(`S3 blob store: no upload id for copying ${from} to ${to}`);
    try {
      const parts: CompletedPart[] = [];
      for (let start = 0, part = 1; start < size; start += COPY_PART_BYTES, part++) {
        const end = Math.min(size, start + COPY_PART_BYTES) - 1;
        const res = await this.client.send(
          new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId, PartNumber: part, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
        );
        const etag = res.CopyPartResult?.ETag;
        parts.push(etag === undefined ? { PartNumber: part } : { PartNumber: part, ETag: etag });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  private async deleteQuietly(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch {
      // Left behind under tmp/; a bucket lifecycle rule on the prefix can sweep such objects.
    }
  }

  async read(sha256: string, offset = 0): Promise<AsyncIterable<Buffer>> {
    const key = this.keyOf(sha256);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new BadRequestError(`offset ${offset} is outside blob ${sha256}`);
    // From the start, no Range: a range cannot be satisfied on an empty object.
    const res = await this.getRange(sha256, key, offset === 0 ? undefined : `bytes=${offset}-`);
    if (res) return bodyOf(res);
    // Not satisfiable: the offset is at the very end (nothing left to read) or past it.
    const found = await this.stat(sha256);
    if (!found) throw new BlobNotFoundError(sha256);
    if (offset > found.size) throw new BadRequestError(`offset ${offset} is outside blob ${sha256} of ${found.size} bytes`);
    return Readable.from([]);
  }

  async readHead(sha256: string, bytes: number): Promise<Buffer> {
    const key = this.keyOf(sha256);
    const found = await this.stat(sha256);
    if (!found) throw new BlobNotFoundError(sha256);
    const want = Math.min(Math.floor(bytes), found.size);
    if (want <= 0) return Buffer.alloc(0);
    const res = await this.getRange(sha256, key, `bytes=0-${want - 1}`);
    if (!res) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    for await (const chunk of bodyOf(res)) parts.push(chunk);
    const all = Buffer.concat(parts);
    return all.length > want ? all.subarray(0, want) : all;
  }

  /** A GET, ranged if `range` is given; undefined when the range is not satisfiable (416). */
  private async getRange(sha256: string, key: string, range: string | undefined): Promise<GetObjectCommandOutput | undefined> {
    try {
      const input = { Bucket: this.options.bucket, Key: key };
      return await this.client.send(new GetObjectCommand(range === undefined ? input : { ...input, Range: range }));
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(sha256);
      if (httpStatusOf(err) === 416 || errorName(err) === 'InvalidRange') return undefined;
      throw this.unreachable(err);
    }
  }
}

function bodyOf(res: GetObjectCommandOutput): AsyncIterable<Buffer> {
  const body: unknown = res.Body;
  // A Node.js response stream: its chunks are Buffers.
  if (body instanceof Readable) return body as AsyncIterable<Buffer>;
  if (body === undefined) return Readable.from([]);
  throw new Error('S3 blob store: the S3 client returned a body that is not a Node.js stream');
}

/** Resolves once `stream` can take more or is closed (the upload failing closes it). */
function drained(stream: PassThrough): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = (): void => {
      stream.off('drain', finish);
      stream.off('close', finish);
      resolve();
    };
    stream.on('drain', finish);
    stream.on('close', finish);
  });
}

function checkEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new InvalidOptionError('endpoint', 'an http:// or https:// URL', endpoint);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidOptionError('endpoint', 'an http:// or https:// URL', endpoint);
}

function redact(url: URL): string {
  if (!url.password) return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const meta: unknown = err.$metadata;
  if (typeof meta !== 'object' || meta === null || !('httpStatusCode' in meta)) return undefined;
  return typeof meta.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** The object is absent (a missing bucket is a configuration error, not a missing blob). */
function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchBucket') return false;
  return name === 'NotFound' || name === 'NoSuchKey' || httpStatusOf(err) === 404;
}

/** Error names the AWS SDK gives throttling (its own list, for services that answer 4xx). */
const THROTTLING = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);

/** Node's errors for a server that cannot be reached or a connection that broke. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN']);

/** S3 cannot serve right now: not reached, timed out, a 5xx, or throttled. */
function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const status = httpStatusOf(err);
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (THROTTLING.has(err.name)) return true;
  // The SDK's socket and connection timeouts.
  if (err.name === 'TimeoutError' || err.name === 'RequestTimeout' || err.name === 'RequestTimeoutException') return true;
  const code = 'code' in err ? err.code : undefined;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = httpStatusOf(err);
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const message = err.message && err.message !== 'UnknownError' ? err.message : (code ?? err.name);
  return status === undefined ? message : `${message} (HTTP ${status})`;
}
