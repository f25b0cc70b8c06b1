import { once } from 'node:events';
import type {
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { BLOB_CHUNK_BYTES, isSha256 } from '@mmgrid/core';
import type {
  BlobServiceServer,
  GetBlobRequest,
  GetBlobResponse,
  HasBlobsRequest,
  HasBlobsResponse,
  PutBlobHeader,
  PutBlobRequest,
  PutBlobResponse,
} from '@mmgrid/proto';
import { blobTenantOf, type Authenticator, type Principal } from '../auth.js';
import type { BlobGrants } from '../blob-grants.js';
import type { BlobStore } from '../blob-store.js';
import { BadRequestError, BlobNotFoundError, LimitExceededError } from '../errors.js';
import { limitExceeded } from '../limits.js';
import { toServiceError, unary } from '../grpc-errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

export interface BlobServiceDeps {
  readonly blobs: BlobStore;
  readonly auth: Authenticator;
  readonly logger: Logger;
  readonly maxBlobBytes: number;
  /** Bytes per GetBlob message. @default BLOB_CHUNK_BYTES */
  readonly chunkBytes?: number;
  /** Counts the bytes received and sent, and deduplicated uploads. @default none */
  readonly metrics?: Metrics;
  /**
   * Which tenants may read which blobs. Without it every caller reads every blob (a server
   * with one tenant, such as a benchmark's). @default none
   */
  readonly grants?: BlobGrants;
}

const MAX_HAS_BLOBS = 1000;

/** Content-addressed uploads and downloads, streamed in chunks. */
export class BlobServiceImpl {
  constructor(private readonly deps: BlobServiceDeps) {}

  handlers(): BlobServiceServer & UntypedServiceImplementation {
    const { logger } = this.deps;
    return {
      putBlob: (call: ServerReadableStream<PutBlobRequest, PutBlobResponse>, callback: sendUnaryData<PutBlobResponse>) => {
        this.put(call).then(
          (res) => callback(null, res),
          (err: unknown) => {
            if (err instanceof LimitExceededError) this.deps.metrics?.limitRefused(err.limit);
            // Stop reading the rest of a refused upload.
            call.destroy();
            callback(toServiceError(err, logger, 'PutBlob'));
          },
        );
      },
      getBlob: (call: ServerWritableStream<GetBlobRequest, GetBlobResponse>) => {
        // Ends the call with the error's status (see JobService's watchJob).
        this.get(call).catch((err: unknown) => call.emit('error', toServiceError(err, logger, 'GetBlob')));
      },
      hasBlobs: unary(logger, 'HasBlobs', (call: ServerUnaryCall<HasBlobsRequest, HasBlobsResponse>) => this.has(call)),
    };
  }

  /**
   * Whether the principal may read the blob. Another tenant's blob is answered as if absent,
   * so its existence is not given away.
   */
  private async mayRead(principal: Principal, sha256: string): Promise<boolean> {
    const tenant = blobTenantOf(principal);
    if (tenant === undefined || !this.deps.grants) return true;
    return this.deps.grants.holds(tenant, sha256);
  }

  private async put(call: ServerReadableStream<PutBlobRequest, PutBlobResponse>): Promise<PutBlobResponse> {
    // Workers upload their tasks' outputs; submitters their jobs' inputs.
    const principal = await this.deps.auth.authenticate(call.metadata, ['submitter', 'worker']);
    const iterator = (call as AsyncIterable<PutBlobRequest>)[Symbol.asyncIterator]();
    const first = await iterator.next();
    const header: PutBlobHeader | undefined = !first.done && first.value.part?.$case === 'header' ? first.value.part.header : undefined;
    if (!header) throw new BadRequestError('the first PutBlob message must be a header (sha256, size, name)');
    if (!isSha256(header.sha256)) throw new BadRequestError(`header.sha256 "${header.sha256}" is not a SHA-256 (64 lower-case hex characters)`);
    if (header.size > this.deps.maxBlobBytes) {
      throw limitExceeded('maxBlobBytes', header.size, this.deps.maxBlobBytes, `${header.name === '' ? 'the blob' : `"${header.name}"`} has ${header.size} bytes`, 'bytes');
    }
    const metrics = this.deps.metrics;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        const part = next.value.part;
        if (part?.$case !== 'chunk') throw new BadRequestError('after the header, PutBlob messages must be chunks');
        metrics?.blobBytes('in', part.chunk.byteLength);
        yield part.chunk;
      }
    }
    const tenant = blobTenantOf(principal);
    const grants = this.deps.grants;
    const heldBefore = tenant !== undefined && grants ? await grants.holds(tenant, header.sha256) : true;
    const { stat, deduplicated } = await this.deps.blobs.put({ sha256: header.sha256, size: header.size }, chunks());
    if (deduplicated) metrics?.blobDeduplicated();
    // The bytes arrived and matched their hash: the tenant has shown it holds them.
    if (principal.roles.includes('submitter') && grants) await grants.grant(principal.tenant, [stat.sha256]);
    // Whether another tenant uploaded the same bytes is not this caller's business.
    return { blob: { sha256: stat.sha256, size: stat.size, mediaType: header.mediaType, name: header.name }, deduplicated: deduplicated && heldBefore };
  }

  private async get(call: ServerWritableStream<GetBlobRequest, GetBlobResponse>): Promise<void> {
    const principal = await this.deps.auth.authenticate(call.metadata, ['submitter', 'worker']);
    const { sha256, offset } = call.request;
    if (!isSha256(sha256)) throw new BadRequestError(`sha256 "${sha256}" is not a SHA-256 (64 lower-case hex characters)`);
    const stat = (await this.mayRead(principal, sha256)) ? await this.deps.blobs.stat(sha256) : undefined;
    if (!stat) throw new BlobNotFoundError(sha256);
    call.write({ part: { $case: 'info', info: { sha256, size: stat.size, mediaType: '', name: '' } } });
    // Stores read in pieces of their own size; messages are cut to the measured size.
    for await (const chunk of rechunk(await this.deps.blobs.read(sha256, offset), this.deps.chunkBytes ?? BLOB_CHUNK_BYTES)) {
      if (call.cancelled) return;
      this.deps.metrics?.blobBytes('out', chunk.byteLength);
      if (!call.write({ part: { $case: 'chunk', chunk } })) await once(call, 'drain');
    }
    call.end();
  }

  private async has(call: ServerUnaryCall<HasBlobsRequest, HasBlobsResponse>): Promise<HasBlobsResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, ['submitter', 'worker']);
    const wanted = call.request.sha256;
    if (wanted.length > MAX_HAS_BLOBS) throw new BadRequestError(`HasBlobs takes at most ${MAX_HAS_BLOBS} hashes (got ${wanted.length})`);
    const valid = wanted.filter((sha) => isSha256(sha));
    const tenant = blobTenantOf(principal);
    // A tenant is told only of the blobs it may read: it uploads the others' bytes itself.
    const readable = tenant !== undefined && this.deps.grants ? await this.deps.grants.held(tenant, valid) : new Set(valid);
    const present: string[] = [];
    for (const sha of valid) {
      if (readable.has(sha) && (await this.deps.blobs.stat(sha))) present.push(sha);
    }
    return { present };
  }
}

/** `pieces` as chunks of exactly `size` bytes (the last may be shorter). */
export async function* rechunk(pieces: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of pieces) {
    let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (pendingBytes + buf.byteLength >= size) {
      const take = size - pendingBytes;
      yield pending.length === 0 ? buf.subarray(0, take) : Buffer.concat([...pending, buf.subarray(0, take)]);
      buf = buf.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (buf.byteLength > 0) {
      pending.push(buf);
      pendingBytes += buf.byteLength;
    }
  }
  if (pendingBytes > 0) yield pending.length === 1 && pending[0] ? pending[0] : Buffer.concat(pending);
}
