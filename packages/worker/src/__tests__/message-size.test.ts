import { describe, expect, it } from 'vitest';
import { WorkerMessage, type Lease, type TaskRunStats } from '@mmgrid/proto';
import { encodedSize, fitResultMessage, maxMessageBytesOf } from '../worker-daemon.js';

const MiB = 1024 * 1024;
const lease: Lease = { leaseId: 'l1', fencingToken: 7, taskRef: 'q/t1', durationMs: 4000 };
const stats: TaskRunStats = { startedAtMs: 1, finishedAtMs: 2, device: 'cpu', model: '' };

function result(outputJson: string): WorkerMessage {
  return { msg: { $case: 'result', result: { lease, outputJson, blobs: [], stats } } };
}

describe('results too large to send', () => {
  it('measures a message as gRPC sends it', () => {
    const message = result('{"a":1}');
    expect(encodedSize(message)).toBe(Buffer.from(WorkerMessage.encode(message).finish()).byteLength);
  });

  it('sends a result that fits as it is', () => {
    const message = result(JSON.stringify({ text: 'x'.repeat(1000) }));
    expect(fitResultMessage(message, 8 * MiB)).toBe(message);
    // Exactly at the limit still fits: gRPC refuses only larger messages.
    expect(fitResultMessage(message, encodedSize(message))).toBe(message);
  });

  it('turns a result over the limit into a failure that is not retried, naming the size and the limit', () => {
    const message = result(JSON.stringify({ text: 'x'.repeat(9 * MiB) }));
    const size = encodedSize(message);
    expect(size).toBeGreaterThan(8 * MiB);
    const fitted = fitResultMessage(message, 8 * MiB);
    expect(fitted.msg?.$case).toBe('failure');
    if (fitted.msg?.$case !== 'failure') return;
    expect(fitted.msg.failure.lease).toEqual(lease);
    expect(fitted.msg.failure.stats).toEqual(stats);
    expect(fitted.msg.failure.error).toMatchObject({ code: 'OUTPUT_TOO_LARGE', retryable: false });
    expect(fitted.msg.failure.error?.message).toContain(`(${size} bytes)`);
    expect(fitted.msg.failure.error?.message).toContain(`(${8 * MiB} bytes)`);
    expect(fitted.msg.failure.error?.message).toMatch(/blobs/);
    // What replaces it is small, and fits.
    expect(encodedSize(fitted)).toBeLessThan(4096);
    expect(fitResultMessage(message, encodedSize(message) - 1).msg?.$case).toBe('failure');
  });

  it('cuts the message of a failure too long to send', () => {
    const message: WorkerMessage = { msg: { $case: 'failure', failure: { lease, error: { code: 'TASK_FAILED', message: 'e'.repeat(3 * MiB), retryable: true }, stats } } };
    const fitted = fitResultMessage(message, 2 * MiB);
    expect(encodedSize(fitted)).toBeLessThan(2 * MiB);
    expect(fitted.msg?.$case === 'failure' && fitted.msg.failure.error).toMatchObject({ code: 'TASK_FAILED', retryable: true });
  });

  it('leaves other messages alone', () => {
    const progress: WorkerMessage = { msg: { $case: 'progress', progress: { lease, fraction: 0.5, message: 'p'.repeat(100) } } };
    expect(fitResultMessage(progress, 10)).toBe(progress);
  });

  it('takes the smaller of the connection’s limit and the one the coordinator announces', () => {
    expect(maxMessageBytesOf(8 * MiB, 0)).toBe(8 * MiB);
    expect(maxMessageBytesOf(8 * MiB, 4 * MiB)).toBe(4 * MiB);
    expect(maxMessageBytesOf(8 * MiB, 16 * MiB)).toBe(8 * MiB);
  });
});
