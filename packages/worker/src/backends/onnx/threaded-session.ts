import { Worker } from 'node:worker_threads';
import { BackendUnavailableError } from '../backend.js';
import type { OpenSession, SessionInfo } from './onnx-session.js';
import type { FromThread, ToThread } from './thread-messages.js';

/** The thread's script, beside this file once built (lib/backends/onnx/onnx-thread.js). */
const THREAD_SCRIPT = new URL('./onnx-thread.js', import.meta.url);

type Reply = Exclude<FromThread, { type: 'failed' }>;

/** Requests to one ONNX Runtime thread, each answered by id. */
class ThreadClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (err: Error) => void }>();
  private gone: Error | undefined;

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: FromThread) => this.settle(reply));
    worker.on('error', (err) => this.end(new Error(`the ONNX Runtime thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.end(new Error(`the ONNX Runtime thread stopped (exit code ${code})`)));
    // An idle thread does not keep the worker process alive; one with work in flight does.
    worker.unref();
  }

  request(build: (id: number) => ToThread, transfer: ArrayBuffer[] = [], signal?: AbortSignal): Promise<Reply> {
    if (this.gone) return Promise.reject(this.gone);
    const message = build(this.nextId++);
    return new Promise<Reply>((resolve, reject) => {
      const onAbort = (): void => {
        this.forget(message.id);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('stopped'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(message.id, {
        resolve: (reply) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(reply);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      });
      this.worker.ref();
      this.worker.postMessage(message, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.end(new Error('the ONNX Runtime thread was closed'));
    await this.worker.terminate();
  }

  private settle(reply: FromThread): void {
    const waiter = this.pending.get(reply.id);
    this.forget(reply.id);
    if (!waiter) return;
    if (reply.type === 'failed') waiter.reject(reply.unavailable ? new BackendUnavailableError(reply.message) : new Error(reply.message));
    else waiter.resolve(reply);
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private end(err: Error): void {
    this.gone ??= err;
    for (const [id, waiter] of this.pending) {
      this.forget(id);
      waiter.reject(err);
    }
  }
}

/**
 * Opens the model in a thread of its own, so that runs (which take the calling thread for
 * their whole length) leave the worker's thread free. `signal` bounds the loading.
 *
 * @throws BackendUnavailableError
 */
export const openSessionInThread: OpenSession = async (model, device, signal) => {
  const thread = new ThreadClient(new Worker(THREAD_SCRIPT));
  let info: SessionInfo;
  try {
    const reply = await thread.request((id) => ({ type: 'open', id, model, device }), [], signal);
    if (reply.type !== 'opened') throw new Error(`the ONNX Runtime thread answered ${reply.type} to open`);
    info = reply.info;
  } catch (err) {
    await thread.terminate();
    if (signal?.aborted) throw new BackendUnavailableError(`loading ${model} took longer than the start-up check allows`, { cause: err });
    if (err instanceof BackendUnavailableError) throw err;
    throw new BackendUnavailableError(`ONNX Runtime cannot load ${model}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let closing: Promise<void> | undefined;
  return {
    info,
    async run(input, tensor, output, runSignal) {
      const { data } = tensor;
      // The input's buffer moves to the thread when it is the tensor's alone (no copy).
      const transfer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? [data.buffer] : [];
      const reply = await thread.request((id) => ({ type: 'run', id, input, tensor, output }), transfer, runSignal);
      if (reply.type !== 'ran') throw new Error(`the ONNX Runtime thread answered ${reply.type} to run`);
      return reply.tensor;
    },
    close: () =>
      (closing ??= (async () => {
        try {
          await thread.request((id) => ({ type: 'close', id }), [], AbortSignal.timeout(5_000));
        } catch {
          // A thread that does not answer is stopped all the same.
        }
        await thread.terminate();
      })()),
  };
};
