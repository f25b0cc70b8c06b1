import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort } from '@mmgrid/cli';
import { InvalidOptionError, type AudioAnalyzeOutput } from '@mmgrid/core';
import { BadRequestError, BlobNotFoundError, CoordinatorError, FsBlobStore, LimitExceededError, S3BlobStore, type BlobStat, type BlobStore } from '@mmgrid/coordinator';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { startHttpServer } from '../helpers/http-server.js';
import { tool, writeWav } from '../helpers/media.js';
import { refusal as submitRefusal } from '../helpers/refusal.js';

/**
 * The BlobStore port, held to one table of behaviours by both stores: the local folder and an
 * S3 bucket served by s3rver (a real S3 protocol server) through the AWS SDK.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const MAX_BLOB_BYTES = 24 * MiB;
const CHUNK = 64 * KiB;
const BUCKET = 'mmgrid-test';
// s3rver's built-in account.
const ACCESS_KEY = 'S3RVER';

interface Subject {
  readonly store: BlobStore;
  /** Every object the store keeps (blobs and any temporary ones), relative to its root. */
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

let s3rver: S3rver;
let s3Dir: string;
let endpoint: string;
let s3: S3Client;

beforeAll(async () => {
  s3Dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-s3rver-'));
  s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3Dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
  const { port } = await s3rver.run();
  endpoint = `http://127.0.0.1:${port}`;
  s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY } });
});

afterAll(async () => {
  s3?.destroy();
  await s3rver?.close();
  if (s3Dir) await rm(s3Dir, { recursive: true, force: true });
});

let nextPrefix = 0;

const subjects: { name: string; make: () => Promise<Subject> }[] = [
  {
    name: 'FsBlobStore',
    make: async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-fsblobs-'));
      const store = new FsBlobStore(dir, MAX_BLOB_BYTES);
      await store.init();
      return {
        store,
        keys: async () => (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/')).sort(),
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'S3BlobStore',
    make: async () => {
      const prefix = `run${nextPrefix++}/blobs/`;
      const store = S3BlobStore.fromUrl(`s3://${ACCESS_KEY}:${ACCESS_KEY}@${BUCKET}/${prefix}?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`, MAX_BLOB_BYTES);
      await store.init();
      return {
        store,
        keys: async () => {
          const keys: string[] = [];
          let token: string | undefined;
          do {
            const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
            for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(prefix.length));
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
          } while (token);
          return keys.sort();
        },
        close: () => {
          store.close();
          return Promise.resolve();
        },
      };
    },
  },
];

function statOf(bytes: Uint8Array): BlobStat {
  return { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.byteLength };
}

function keyOf(sha256: string): string {
  return `${sha256.slice(0, 2)}/${sha256}`;
}

/** Feeds items one at a time, as a network stream would. */
async function* streamOf<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const item of items) yield await Promise.resolve(item);
}

function chunksOf(bytes: Uint8Array, size = CHUNK): AsyncGenerator<Uint8Array> {
  return streamOf(
    (function* () {
      for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, Math.min(bytes.byteLength, at + size));
    })(),
  );
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof Error) return err;
    throw err;
  }
  throw new Error('expected the call to be refused');
}

/** 64 KiB chunks of a deterministic pattern, generated as they are read (never all in memory). */
function patternChunks(total: number): AsyncGenerator<Uint8Array> {
  return streamOf(
    (function* () {
      for (let at = 0, n = 0; at < total; at += CHUNK, n++) {
        const chunk = Buffer.alloc(Math.min(CHUNK, total - at));
        for (let i = 0; i < chunk.length; i += 32) createHash('sha256').update(`${n}:${i}`).digest().copy(chunk, i);
        yield chunk;
      }
    })(),
  );
}

describe.each(subjects)('$name', ({ make }) => {
  let subject: Subject;
  let store: BlobStore;

  beforeAll(async () => {
    subject = await make();
    store = subject.store;
  });

  afterAll(async () => {
    await subject?.close();
  });

  it('stores, stats, reads from offsets and reads heads', async () => {
    const bytes = randomBytes(300 * KiB + 17);
    const declared = statOf(bytes);
    expect(await store.stat(declared.sha256)).toBeUndefined();

    const res = await store.put(declared, chunksOf(bytes));
    expect(res).toEqual({ stat: declared, deduplicated: false });
    expect(await store.stat(declared.sha256)).toEqual(declared);

    expect((await readAll(await store.read(declared.sha256))).equals(bytes)).toBe(true);
    expect((await readAll(await store.read(declared.sha256, 1000))).equals(bytes.subarray(1000))).toBe(true);
    expect((await readAll(await store.read(declared.sha256, bytes.length - 1))).equals(bytes.subarray(-1))).toBe(true);
    expect((await readAll(await store.read(declared.sha256, bytes.length))).length).toBe(0);
    expect(await refusal(store.read(declared.sha256, bytes.length + 1))).toBeInstanceOf(BadRequestError);

    expect((await store.readHead(declared.sha256, 16)).equals(bytes.subarray(0, 16))).toBe(true);
    expect((await store.readHead(declared.sha256, bytes.length * 2)).equals(bytes)).toBe(true);

    expect(await subject.keys()).toEqual([keyOf(declared.sha256)]);
  });

  it('stores an empty blob', async () => {
    const declared = statOf(Buffer.alloc(0));
    expect(await store.put(declared, chunksOf(Buffer.alloc(0)))).toEqual({ stat: declared, deduplicated: false });
    expect(await store.stat(declared.sha256)).toEqual(declared);
    expect((await readAll(await store.read(declared.sha256))).length).toBe(0);
    expect((await store.readHead(declared.sha256, 64)).length).toBe(0);
  });

  it('answers for absent blobs and refuses names that are not hashes', async () => {
    const absent = statOf(Buffer.from('never stored'));
    expect(await store.stat(absent.sha256)).toBeUndefined();
    expect(await refusal(store.read(absent.sha256))).toBeInstanceOf(BlobNotFoundError);
    expect(await refusal(store.readHead(absent.sha256, 10))).toBeInstanceOf(BlobNotFoundError);
    expect(await refusal(store.stat('../etc/passwd'))).toBeInstanceOf(BadRequestError);
    expect(await refusal(store.put({ sha256: 'ABC', size: 1 }, chunksOf(Buffer.from('x'))))).toBeInstanceOf(BadRequestError);
  });

  it('refuses bytes that do not hash to the declared SHA-256 and keeps nothing', async () => {
    const before = await subject.keys();
    const bytes = randomBytes(100 * KiB);
    const other = Buffer.from(bytes);
    other[5] = (other[5] ?? 0) ^ 1;
    const declared = statOf(other);
    const err = await refusal(store.put(declared, chunksOf(bytes)));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toBe(`blob hash mismatch: the bytes received hash to ${statOf(bytes).sha256}, not the declared ${declared.sha256}`);
    expect(await store.stat(declared.sha256)).toBeUndefined();
    expect(await store.stat(statOf(bytes).sha256)).toBeUndefined();
    expect(await subject.keys()).toEqual(before);
  });

  it('refuses a wrong hash found only after several upload parts, and keeps nothing', async () => {
    const before = await subject.keys();
    const declared = { sha256: 'f'.repeat(64), size: 12 * MiB };
    const err = await refusal(store.put(declared, patternChunks(12 * MiB)));
    expect(err).toBeInstanceOf(BadRequestError);
    expect(err.message).toMatch(/^blob hash mismatch/);
    expect(await store.stat(declared.sha256)).toBeUndefined();
    expect(await subject.keys()).toEqual(before);
  });

  it('refuses fewer or more bytes than declared', async () => {
    const before = await subject.keys();
    const bytes = randomBytes(200 * KiB);
    const declared = statOf(bytes);

    const short = await refusal(store.put(declared, chunksOf(bytes.subarray(0, 150 * KiB))));
    expect(short).toBeInstanceOf(BadRequestError);
    expect(short.message).toBe(`blob ${declared.sha256}: received ${150 * KiB} bytes, declared ${200 * KiB}`);

    const long = await refusal(store.put(declared, chunksOf(Buffer.concat([bytes, Buffer.from('extra')]))));
    expect(long).toBeInstanceOf(BadRequestError);
    expect(long.message).toBe(`blob ${declared.sha256}: received more than the declared ${200 * KiB} bytes`);

    expect(await store.stat(declared.sha256)).toBeUndefined();
    expect(await subject.keys()).toEqual(before);
  });

  it('refuses a blob over the limit before reading any of it', async () => {
    let read = false;
    function* chunks(): Generator<Uint8Array> {
      read = true;
      yield Buffer.alloc(1);
    }
    const err = await refusal(store.put({ sha256: 'a'.repeat(64), size: MAX_BLOB_BYTES + 1 }, streamOf(chunks())));
    expect(err).toBeInstanceOf(LimitExceededError);
    if (err instanceof LimitExceededError) {
      expect(err.limit).toBe('maxBlobBytes');
      expect(err.max).toBe(MAX_BLOB_BYTES);
    }
    expect(err.message).toBe(`the blob has ${MAX_BLOB_BYTES + 1} bytes; this grid allows at most ${MAX_BLOB_BYTES} bytes (--max-blob-bytes)`);
    expect(read).toBe(false);
  });

  it('stores equal bytes once', async () => {
    const bytes = randomBytes(70 * KiB);
    const declared = statOf(bytes);
    const before = await subject.keys();
    expect(await store.put(declared, chunksOf(bytes))).toEqual({ stat: declared, deduplicated: false });
    expect(await store.put(declared, chunksOf(bytes, 1000))).toEqual({ stat: declared, deduplicated: true });
    expect(await subject.keys()).toEqual([...before, keyOf(declared.sha256)].sort());
    expect((await readAll(await store.read(declared.sha256))).equals(bytes)).toBe(true);
  });

  it('streams a 20 MiB blob in 64 KiB chunks', async () => {
    const size = 20 * MiB;
    const hash = createHash('sha256');
    for await (const chunk of patternChunks(size)) hash.update(chunk);
    const declared = { sha256: hash.digest('hex'), size };

    expect(await store.put(declared, patternChunks(size))).toEqual({ stat: declared, deduplicated: false });
    expect(await store.stat(declared.sha256)).toEqual(declared);

    const back = createHash('sha256');
    let got = 0;
    for await (const chunk of await store.read(declared.sha256)) {
      back.update(chunk);
      got += chunk.length;
    }
    expect(got).toBe(size);
    expect(back.digest('hex')).toBe(declared.sha256);

    const tail = await readAll(await store.read(declared.sha256, size - 100));
    let last: Uint8Array = Buffer.alloc(0);
    for await (const chunk of patternChunks(size)) last = chunk;
    expect(tail.equals(Buffer.from(last).subarray(-100))).toBe(true);
    expect(await subject.keys()).toContain(keyOf(declared.sha256));
    expect((await subject.keys()).filter((k) => k.startsWith('tmp/'))).toEqual([]);
  });

  it('takes concurrent puts of the same blob', async () => {
    const bytes = randomBytes(6 * MiB + 5);
    const declared = statOf(bytes);
    const before = await subject.keys();
    const results = await Promise.all([1, 2, 3, 4].map(() => store.put(declared, chunksOf(bytes))));
    for (const res of results) expect(res.stat).toEqual(declared);
    expect(results.some((res) => !res.deduplicated)).toBe(true);
    expect(await subject.keys()).toEqual([...before, keyOf(declared.sha256)].sort());
    expect((await readAll(await store.read(declared.sha256))).equals(bytes)).toBe(true);
  });
});

describe('FsBlobStore.localPath', () => {
  it('names the file of a blob, and nothing for a bad hash', () => {
    const store = new FsBlobStore('/var/blobs', MAX_BLOB_BYTES);
    const sha = 'ab'.repeat(32);
    expect(store.localPath(sha)).toBe(path.join('/var/blobs', 'ab', sha));
    expect(store.localPath('nope')).toBeUndefined();
  });
});

describe('S3BlobStore setup', () => {
  function optionRefusal(url: string): InvalidOptionError {
    try {
      S3BlobStore.fromUrl(url, MAX_BLOB_BYTES);
    } catch (err) {
      if (err instanceof InvalidOptionError) return err;
      throw err;
    }
    throw new Error(`expected ${url} to be refused`);
  }

  it('keeps no local files', () => {
    const store = S3BlobStore.fromUrl(`s3://${BUCKET}/?endpoint=${endpoint}`, MAX_BLOB_BYTES);
    const port: BlobStore = store;
    expect('localPath' in port).toBe(false);
    store.close();
  });

  it.each([
    ['not a URL', 'no scheme at all'],
    ['http://bucket/prefix/', 'an s3:// URL'],
    ['s3://Bad_Bucket/', 'bucket name'],
    ['s3://bucket:9000/', "put the server's address"],
    ['s3://mmgrid/x/?endpoint=ftp://host', 'http:// or https:// endpoint'],
    ['s3://mmgrid/x/?endpoint=nonsense', 'http:// or https:// endpoint'],
    ['s3://mmgrid/x/?forcePathStyle=maybe', 'forcePathStyle=true or forcePathStyle=false'],
    ['s3://mmgrid/x/?colour=blue', '"colour" is not a known parameter'],
    ['s3://onlykey@mmgrid/x/', 'KEY:SECRET@'],
  ])('refuses %s', (url, why) => {
    const err = optionRefusal(url);
    expect(err.option).toBe('blob store URL');
    if (why !== 'no scheme at all') expect(err.message).toContain(why);
  });

  it('does not repeat a secret in its refusal', () => {
    const err = optionRefusal('s3://key:topsecret@mmgrid/x/?colour=blue');
    expect(err.message).not.toContain('topsecret');
  });

  it('names the endpoint and bucket when the bucket cannot be reached', async () => {
    const store = new S3BlobStore({ endpoint, region: 'us-east-1', bucket: 'no-such-bucket', prefix: '', accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY, forcePathStyle: true, maxBlobBytes: MAX_BLOB_BYTES });
    try {
      const err = await refusal(store.init());
      expect(err.message).toContain(endpoint);
      expect(err.message).toContain('"no-such-bucket"');
    } finally {
      store.close();
    }
  });
});

/**
 * An S3 that cannot serve: the store says so as UNAVAILABLE, naming the blob store (the
 * gRPC services used to take a refused connection for Redis being down, and a 5xx for an
 * internal error).
 */
describe('S3BlobStore when S3 cannot serve', () => {
  /** Every way into the store fails as UNAVAILABLE with a message naming the blob store at `where`. */
  async function expectUnavailable(store: S3BlobStore, where: string, why: RegExp): Promise<void> {
    const bytes = randomBytes(10 * KiB);
    const declared = statOf(bytes);
    const calls: [string, () => Promise<unknown>][] = [
      ['stat', () => store.stat(declared.sha256)],
      ['put', () => store.put(declared, chunksOf(bytes))],
      ['read', () => store.read(declared.sha256)],
      ['readHead', () => store.readHead(declared.sha256, 64)],
    ];
    for (const [name, call] of calls) {
      const err = await refusal(call());
      expect({ name, error: err.name }).toEqual({ name, error: 'CoordinatorError' });
      expect(err).toBeInstanceOf(CoordinatorError);
      if (err instanceof CoordinatorError) expect({ name, code: err.code }).toEqual({ name, code: 'UNAVAILABLE' });
      expect(err.message).toContain(`the blob store (bucket "${BUCKET}" at ${where}) cannot be reached: `);
      expect(err.message).toMatch(why);
      expect(err.message).not.toMatch(/redis/i);
    }
  }

  it('a server that is not there', async () => {
    const where = `http://127.0.0.1:${await freePort()}`;
    const store = S3BlobStore.fromUrl(`s3://${ACCESS_KEY}:${ACCESS_KEY}@${BUCKET}/x/?endpoint=${where}&region=us-east-1`, MAX_BLOB_BYTES);
    try {
      await expectUnavailable(store, where, /ECONNREFUSED/);
    } finally {
      store.close();
    }
  });

  it('a server that answers 503 SlowDown (throttling) and 500', async () => {
    let requests = 0;
    const server = await startHttpServer((req, res) => {
      requests += 1;
      req.resume();
      const [status, code] = requests % 2 === 0 ? [500, 'InternalError'] : [503, 'SlowDown'];
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>Please reduce your request rate.</Message><RequestId>1</RequestId></Error>`);
    });
    const where = server.url;
    const store = S3BlobStore.fromUrl(`s3://${ACCESS_KEY}:${ACCESS_KEY}@${BUCKET}/x/?endpoint=${where}&region=us-east-1`, MAX_BLOB_BYTES);
    try {
      await expectUnavailable(store, where, /HTTP 50[03]/);
      expect(requests).toBeGreaterThan(0);
    } finally {
      store.close();
      await server.stop();
    }
  });
});

/**
 * A grid (coordinator and worker processes) whose coordinator keeps blobs in the s3rver
 * bucket: media is still probed with ffprobe at submit, from a temporary copy of the blob.
 */
describe('a grid storing blobs in S3', () => {
  let tg: TestGrid;
  let media: string;
  /** The grid's TMPDIR, where the coordinator puts the copies it probes. */
  let gridTmp: string;


  /** Temporary copies of blobs the coordinator still holds. */
  async function probeCopies(): Promise<string[]> {
    return (await readdir(gridTmp)).filter((name) => name.startsWith('mmgrid-probe-'));
  }

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-s3-media-'));
    gridTmp = await mkdtemp(path.join(tmpdir(), 'mmgrid-s3-gridtmp-'));
    const url = `s3://${ACCESS_KEY}:${ACCESS_KEY}@${BUCKET}/grid${nextPrefix++}/blobs/?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`;
    tg = await startTestGrid({
      workers: 1,
      coordinatorArgs: ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000', '--blob-store', url],
      env: { TMPDIR: gridTmp },
    });
  });

  afterAll(async () => {
    await tg?.stop();
    if (media) await rm(media, { recursive: true, force: true });
    if (gridTmp) await rm(gridTmp, { recursive: true, force: true });
  });

  it('refuses a damaged WAV at submit, naming the input, and keeps no copy of it', async () => {
    const whole = await writeWav(media, 'whole.wav', 2, [{ startSec: 0.2, endSec: 1 }]);
    const broken = path.join(media, 'broken.wav');
    // The RIFF header survives (it is a WAV by its bytes); the rest is noise.
    await writeFile(broken, Buffer.concat([(await readFile(whole)).subarray(0, 20), Buffer.alloc(2000, 0xff)]));
    const err = await submitRefusal(tg.client.submit([{ path: broken }]));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/input "broken\.wav" looks like audio\/[\w.-]+ but cannot be read \(.+\)/);
    // ffprobe named the temporary copy; the submitter sees the input's name instead.
    expect(err.message).not.toContain('mmgrid-probe-');
    expect(err.message).not.toContain(gridTmp);
    expect(await probeCopies()).toEqual([]);
  });

  it('knows the duration of a short WAV: one audio.analyze task, no split, and it runs', async () => {
    const wav = await writeWav(media, 'short.wav', 2, [{ startSec: 0.5, endSec: 1.5 }]);
    const job = await tg.client.submit([{ path: wav }]);
    const kinds = job.tasks.map((t) => t.kind);
    expect(kinds.filter((k) => k === 'audio.analyze')).toHaveLength(1);
    expect(kinds).not.toContain('audio.split');
    expect(kinds).not.toContain('audio.stitch');
    expect(await probeCopies()).toEqual([]);

    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const audio = done.result?.doc.inputs.find((i) => i.name === 'short.wav')?.outputs['audio.analyze'] as AudioAnalyzeOutput | undefined;
    expect(audio?.durationSec).toBeCloseTo(2, 2);
  });

  it('takes an MP4 with only sound for a recording', async () => {
    const clip = path.join(media, 'voice-note.mp4');
    await tool('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:a', 'aac', clip]);
    const job = await tg.client.submit([{ path: clip }]);
    const kinds = job.tasks.map((t) => t.kind);
    expect(kinds).toContain('audio.analyze');
    expect(kinds).not.toContain('audio.split');
    expect(kinds.filter((k) => k.startsWith('video.'))).toEqual([]);
    expect(await probeCopies()).toEqual([]);
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.partial).toBe(false);
  });
});
