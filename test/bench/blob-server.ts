/**
 * A BlobService alone, in its own process, for the chunk-size benchmark: the coordinator's
 * service, sending downloads in messages of argv[3] bytes, over a store that keeps blobs in
 * memory (checked as every store checks them) so the disk's speed does not drown the
 * difference the message size makes. Prints its port on stdout; stops on SIGTERM.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { BlobNotFoundError, BlobServiceImpl, createLogger, OpenAuthenticator, verifiedChunks, type BlobStat, type BlobStore, type PutBlobResult } from '@mmgrid/coordinator';
import { BlobServiceService } from '@mmgrid/proto';

class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, Buffer>();

  stat(sha256: string): Promise<BlobStat | undefined> {
    const bytes = this.blobs.get(sha256);
    return Promise.resolve(bytes ? { sha256, size: bytes.byteLength } : undefined);
  }

  async put(declared: BlobStat, chunks: AsyncIterable<Uint8Array>): Promise<PutBlobResult> {
    const parts: Uint8Array[] = [];
    for await (const chunk of verifiedChunks(declared, chunks)) parts.push(chunk);
    const deduplicated = this.blobs.has(declared.sha256);
    this.blobs.set(declared.sha256, Buffer.concat(parts));
    return { stat: declared, deduplicated };
  }

  read(sha256: string, offset = 0): Promise<AsyncIterable<Buffer>> {
    const found = this.blobs.get(sha256);
    if (!found) return Promise.reject(new BlobNotFoundError(sha256));
    const bytes: Buffer = found;
    // Pieces the size a file read stream gives.
    async function* pieces(): AsyncGenerator<Buffer> {
      for (let at = offset; at < bytes.byteLength; at += 256 * 1024) yield await Promise.resolve(bytes.subarray(at, Math.min(bytes.byteLength, at + 256 * 1024)));
    }
    return Promise.resolve(pieces());
  }

  readHead(sha256: string, bytes: number): Promise<Buffer> {
    return Promise.resolve(this.blobs.get(sha256)?.subarray(0, bytes) ?? Buffer.alloc(0));
  }
}

const [chunkArg] = process.argv.slice(2);
if (!chunkArg) throw new Error('usage: blob-server CHUNK_BYTES');
const maxBlobBytes = 1024 ** 3;
const server = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.max_send_message_length': 8 * 1024 * 1024 });
const service = new BlobServiceImpl({
  blobs: new MemoryBlobStore(),
  auth: new OpenAuthenticator(),
  logger: createLogger('bench-blob-server'),
  maxBlobBytes,
  chunkBytes: Number(chunkArg),
});
server.addService(BlobServiceService, service.handlers());
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
);
process.stdout.write(`${port}\n`);
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
