// The ONNX Runtime thread: onnxruntime-node runs a model synchronously on the thread that
// calls it, so the worker's own thread (gRPC, heartbeats, other tasks) hands runs to this one.
import { parentPort } from 'node:worker_threads';
import { BackendUnavailableError } from '../backend.js';
import { openOnnxSession, type OnnxSession } from './onnx-session.js';
import type { FromThread, ToThread } from './thread-messages.js';

const port = parentPort;
if (!port) throw new Error('onnx-thread.js runs as a worker thread');

let session: OnnxSession | undefined;

async function answer(message: ToThread): Promise<FromThread> {
  switch (message.type) {
    case 'open':
      await session?.close();
      session = await openOnnxSession(message.model, message.device);
      return { type: 'opened', id: message.id, info: session.info };
    case 'run': {
      if (!session) throw new Error('no model is loaded');
      return { type: 'ran', id: message.id, tensor: await session.run(message.input, message.tensor, message.output) };
    }
    case 'close':
      await session?.close();
      session = undefined;
      return { type: 'closed', id: message.id };
  }
}

port.on('message', (message: ToThread) => {
  answer(message).then(
    (reply) => port.postMessage(reply, reply.type === 'ran' ? [reply.tensor.data.buffer as ArrayBuffer] : []),
    (err: unknown) =>
      port.postMessage({
        type: 'failed',
        id: message.id,
        message: err instanceof Error ? err.message : String(err),
        unavailable: err instanceof BackendUnavailableError,
      } satisfies FromThread),
  );
});
