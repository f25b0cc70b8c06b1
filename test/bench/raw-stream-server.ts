/**
 * The blobs benchmark's baseline server: grpc-js and nothing else. A client-streaming Upload
 * that keeps the messages it receives (as they arrive, no copy) and a server-streaming
 * Download that sends the last upload's messages back, with backpressure. Messages are raw
 * bytes (identity serialisation: no protobuf, no hashing, no store). Prints its port on
 * stdout; stops on SIGTERM.
 */
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Server, ServerCredentials, type ServerReadableStream, type ServerWritableStream, type sendUnaryData, type ServiceDefinition } from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

/** The service both ends use (imported by the client in blobs.ts). */
export const RAW_STREAM_SERVICE: ServiceDefinition = {
  upload: {
    path: '/bench.RawStream/Upload',
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  download: {
    path: '/bench.RawStream/Download',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

async function serve(): Promise<void> {
  let held: Buffer[] = [];
  const server = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  server.addService(RAW_STREAM_SERVICE, {
    upload: (call: ServerReadableStream<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      const parts: Buffer[] = [];
      let bytes = 0;
      call.on('data', (b: Buffer) => {
        parts.push(b);
        bytes += b.byteLength;
      });
      call.on('end', () => {
        held = parts;
        const reply = Buffer.alloc(8);
        reply.writeBigUInt64BE(BigInt(bytes));
        callback(null, reply);
      });
      call.on('error', () => undefined);
    },
    download: (call: ServerWritableStream<Buffer, Buffer>) => {
      const send = async (): Promise<void> => {
        for (const part of held) {
          if (call.cancelled) return;
          if (!call.write(part)) await once(call, 'drain');
        }
        call.end();
      };
      void send();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  process.stdout.write(`${port}\n`);
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

// Run as a program (the child process), not when blobs.ts imports the service definition.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await serve();
