import { once } from 'node:events';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { Redis, ReplyError } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { toServiceError } from '../grpc-errors.js';
import { S3BlobStore } from '../s3-blob-store.js';
import { freePort } from './free-port.js';

const logger = pino({ level: 'silent' });
const REDIS_DOWN = 'the coordinator cannot reach Redis right now; retry shortly';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('toServiceError: Redis down', () => {
  it('ioredis giving up on a command (MaxRetriesPerRequestError) is UNAVAILABLE, naming Redis', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: await freePort(), maxRetriesPerRequest: 0, retryStrategy: () => 20 });
    redis.on('error', () => undefined);
    try {
      const err = await rejection(redis.get('x'));
      expect(toServiceError(err, logger, 'Test')).toMatchObject({ code: status.UNAVAILABLE, details: REDIS_DOWN });
    } finally {
      redis.disconnect();
    }
  });

  it('a command on a closed ioredis connection is UNAVAILABLE, naming Redis', async () => {
    const redis = new Redis({ host: '127.0.0.1', port: await freePort(), lazyConnect: true });
    redis.on('error', () => undefined);
    redis.disconnect();
    const err = await rejection(redis.get('x'));
    expect(toServiceError(err, logger, 'Test')).toMatchObject({ code: status.UNAVAILABLE, details: REDIS_DOWN });
  });

  it('an answer from Redis (ReplyError) is not Redis being down', () => {
    // ioredis types the class `any`; this is the class it fails a command with an error reply.
    const Reply = ReplyError as new (message: string) => Error;
    expect(toServiceError(new Reply('ERR unknown command'), logger, 'Test').code).toBe(status.INTERNAL);
  });

  it('another connection refused (not Redis) is not Redis being down', async () => {
    const socket = connect(await freePort(), '127.0.0.1');
    const [err] = (await once(socket, 'error')) as [Error];
    expect(err.message).toContain('ECONNREFUSED');
    const mapped = toServiceError(err, logger, 'Test');
    expect(mapped.code).toBe(status.INTERNAL);
    expect(mapped.details).not.toContain('Redis');
  });

  it('an S3 blob store that cannot be reached is UNAVAILABLE, naming the blob store', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const store = new S3BlobStore({ endpoint, region: 'us-east-1', bucket: 'mmgrid', prefix: '', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true, maxBlobBytes: 1024 });
    try {
      const err = await rejection(store.stat('a'.repeat(64)));
      expect(err).toBeInstanceOf(CoordinatorError);
      const mapped = toServiceError(err, logger, 'Test');
      expect(mapped.code).toBe(status.UNAVAILABLE);
      expect(mapped.details).toMatch(new RegExp(`^the blob store \\(bucket "mmgrid" at ${endpoint}\\) cannot be reached: .*ECONNREFUSED`));
      expect(mapped.details).not.toContain('Redis');
    } finally {
      store.close();
    }
  });
});

describe('toServiceError: a request stream that ended early', () => {
  it('is CANCELLED, without an error log: the caller went away or sent bytes grpc-js could not decode', async () => {
    const lines: string[] = [];
    const errorsOnly = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    const stream = new PassThrough({ objectMode: true });
    const reading = rejection((async () => {
      for await (const _ of stream as AsyncIterable<unknown>) void _;
    })());
    stream.destroy();
    const mapped = toServiceError(await reading, errorsOnly, 'PutBlob');
    expect(mapped).toMatchObject({ code: status.CANCELLED, details: 'PutBlob: the request stream ended before it was read' });
    expect(lines).toEqual([]);
  });
});
