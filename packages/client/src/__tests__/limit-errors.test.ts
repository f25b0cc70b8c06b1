import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toClientError } from '../errors.js';

function exhausted(details: string, trailers: Record<string, string> | undefined): ServiceError {
  let metadata: Metadata | undefined;
  if (trailers) {
    metadata = new Metadata();
    for (const [k, v] of Object.entries(trailers)) metadata.set(k, v);
  }
  return Object.assign(new Error(`8 RESOURCE_EXHAUSTED: ${details}`), { code: status.RESOURCE_EXHAUSTED, details, metadata: metadata as Metadata });
}

describe('toClientError on RESOURCE_EXHAUSTED', () => {
  it('keeps the coordinator\'s message and reads the limit it names', () => {
    const message = 'the job has 4 inputs; this grid allows at most 3 (--max-inputs-per-job)';
    const err = toClientError(exhausted(message, { 'mmgrid-limit': 'maxInputsPerJob' }), '127.0.0.1:7070');
    expect(err.code).toBe('RESOURCE_EXHAUSTED');
    expect(err.message).toBe(message);
    expect(err.limit).toBe('maxInputsPerJob');
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('reads when a rate limit lets the call through again', () => {
    const err = toClientError(exhausted('tenant acme is submitting jobs faster than this grid allows', { 'mmgrid-limit': 'submitRatePerTenant', 'retry-after-ms': '1250' }), '127.0.0.1:7070');
    expect(err.limit).toBe('submitRatePerTenant');
    expect(err.retryAfterMs).toBe(1250);
  });

  it('explains a refusal of gRPC itself (no limit named) as a message over the size limit', () => {
    for (const trailers of [undefined, {}]) {
      const err = toClientError(exhausted('Received message larger than max (3145760 vs 2097152)', trailers), '127.0.0.1:7070');
      expect(err.code).toBe('RESOURCE_EXHAUSTED');
      expect(err.limit).toBe('maxMessageBytes');
      expect(err.message).toMatch(/^Received message larger than max \(3145760 vs 2097152\): the request or its answer is larger than a gRPC message may be/);
      expect(err.message).toContain('--max-message-bytes');
    }
  });
});
