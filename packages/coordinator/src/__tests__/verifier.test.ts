import { randomBytes } from 'node:crypto';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hello, type CoordinatorMessage, type WorkerMessage } from '@mmgrid/proto';
import type { JsonValue } from '@mmgrid/core';
import { Keys } from '../keys.js';
import { Metrics } from '../metrics.js';
import { Verifier, type VerificationSettings } from '../verifier.js';
import { WorkerRegistry } from '../worker-registry.js';
import { WorkerSession } from '../worker-session.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

const KIND = 'selftest.sleep';
const CPU = { model: '', minVramBytes: 0, minComputeCapability: '', cpuAllowed: true };

const SETTINGS: VerificationSettings = {
  replicas: new Map([[KIND, 2]]),
  validators: {},
  maxReplicas: 3,
  canaryRate: 0,
  policy: { minVerdicts: 10, replicateBelow: 0.95, quarantineBelow: 0.8 },
};

/** The Connect stream a session writes to; these tests read nothing from it. */
const call = { write: () => true } as unknown as ServerDuplexStream<WorkerMessage, CoordinatorMessage>;

function session(workerId: string, tokenId = ''): WorkerSession {
  const hello = Hello.fromPartial({ workerId, name: workerId, kinds: [{ kind: KIND, slots: 1, models: [] }] });
  return new WorkerSession(`s-${workerId}`, hello, call, 0, () => undefined, tokenId);
}

function output(index: number): JsonValue {
  return { index, sleptMs: 1, attempt: 1 };
}

describe.skipIf(!HAS_REDIS_SERVER)('Verifier (result verification over Redis)', () => {
  let server: TestRedis | undefined;
  let redis: Redis;
  let keys: Keys;
  let registry: WorkerRegistry;
  let announced: string[];

  const verifier = (settings: VerificationSettings = SETTINGS, random = Math.random): Verifier =>
    new Verifier(redis, keys, settings, registry, new Metrics({ defaultMetrics: false }), pino({ level: 'silent' }), () => 1_000, (id) => {
      announced.push(id);
      return Promise.resolve();
    }, random);
  let n = 0;
  const task = (): { jobId: string; taskId: string; kind: string; params: Record<string, JsonValue> } => ({ jobId: `j${++n}`, taskId: 't1', kind: KIND, params: { index: 4 } });

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const fresh = (): void => {
    keys = new Keys(`v${randomBytes(4).toString('hex')}`);
    registry = new WorkerRegistry();
    announced = [];
  };

  it('keeps a first result as a candidate, excludes its worker, and commits once another owner agrees', async () => {
    fresh();
    const [a, b] = [session('a'), session('b')];
    registry.add(a);
    registry.add(b);
    const v = verifier();
    const t = task();
    expect(await v.judge(a, t, output(4))).toMatchObject({ action: 'replicate' });
    const exclude = await v.exclusion(t.jobId, t.taskId);
    expect(exclude && [...exclude.workerIds]).toEqual(['a']);
    expect(registry.reserve(KIND, CPU, t.jobId, exclude)).toBe(b);
    const verdict = await v.judge(b, t, output(4));
    expect(verdict).toMatchObject({ action: 'commit', output: output(4) });
    if (verdict.action !== 'commit' || !verdict.settle) throw new Error('expected a settled commit');
    await v.settle(t, verdict.settle);
    expect(await v.record('a')).toEqual({ agreed: 1, disagreed: 0, quarantinedAt: 0 });
    expect(b.trust).toEqual({ agreed: 1, disagreed: 0, quarantinedAt: 0 });
    expect(await v.exclusion(t.jobId, t.taskId)).toBeUndefined();
  });

  it('carries on from the candidates in Redis after a coordinator restart, and settles a disagreement by the majority', async () => {
    fresh();
    const [liar, a, b] = [session('liar'), session('a'), session('b')];
    const t = task();
    expect(await verifier().judge(liar, t, output(5))).toMatchObject({ action: 'replicate' });
    // Another coordinator (or this one, restarted) gets the next results.
    const after = verifier();
    expect(await after.judge(a, t, output(4))).toMatchObject({ action: 'replicate', reason: 'the results disagree' });
    const verdict = await after.judge(b, t, output(4));
    if (verdict.action !== 'commit' || !verdict.settle) throw new Error('expected a settled commit');
    expect(verdict.output).toEqual(output(4));
    expect(verdict.settle.disagreed.map((c) => c.workerId)).toEqual(['liar']);
    await after.settle(t, verdict.settle);
    expect(await after.record('liar')).toMatchObject({ agreed: 0, disagreed: 1 });
  });

  it('does not count two machines of one owner (one token) as a quorum, and says so when it fails', async () => {
    fresh();
    const [a, b, c] = [session('a', 'tok_1'), session('b', 'tok_1'), session('c', 'tok_1')];
    const v = verifier();
    const t = task();
    expect(await v.judge(a, t, output(4))).toMatchObject({ action: 'replicate' });
    expect(await v.judge(b, t, output(4))).toMatchObject({ action: 'replicate' });
    const verdict = await v.judge(c, t, output(4));
    expect(verdict.action).toBe('fail');
    expect(verdict.action === 'fail' && verdict.message).toMatch(/3 of 3 results agree, but they come from 1 owner and a quorum needs 2 different owners/);
  });

  it('quarantines a worker whose trust falls low, passes it over, and lets an operator release it', async () => {
    fresh();
    const [liar, a] = [session('liar'), session('a')];
    registry.add(liar);
    registry.add(a);
    const v = verifier();
    await redis.hset(keys.trust('liar'), 'agreed', 7, 'disagreed', 2);
    await v.load(liar);
    expect(liar.standing).toBe('trusted');
    // One more disagreement: 10 verdicts, trust 8/12.
    await v.settle(task(), { agreed: [], disagreed: [{ workerId: 'liar', owner: 'liar', output: output(5) }] });
    expect(liar.standing).toBe('quarantined');
    expect(announced).toEqual(['liar']);
    expect(await v.record('liar')).toMatchObject({ quarantinedAt: 1_000 });
    expect(registry.freeSlots(KIND, CPU)).toBe(1);
    expect(registry.reserve(KIND, CPU, 'j')).toBe(a);
    expect(registry.reserve(KIND, CPU, 'j')).toBeUndefined();
    // A reconnect keeps it quarantined.
    const again = session('liar');
    await v.load(again);
    expect(again.standing).toBe('quarantined');
    await v.release('liar');
    expect(liar.standing).toBe('trusted');
    expect(registry.reserve(KIND, CPU, 'j')).toBe(liar);
  });

  it('checks known answers (canaries): a wrong one is refused, counted against the worker and never part of a quorum', async () => {
    fresh();
    const [liar, a, b] = [session('liar'), session('a'), session('b')];
    const always = verifier({ ...SETTINGS, replicas: new Map(), canaryRate: 1 }, () => 0);
    const t = task();
    expect(await always.judge(liar, t, output(5))).toMatchObject({ action: 'replicate', reason: 'the result failed a known-answer check' });
    expect(await always.record('liar')).toMatchObject({ agreed: 0, disagreed: 1 });
    expect([...((await always.exclusion(t.jobId, t.taskId))?.workerIds ?? [])]).toEqual(['liar']);
    // The kind is not replicated: the next right answer is committed alone.
    expect(await always.judge(a, t, output(4))).toMatchObject({ action: 'commit', output: output(4) });
    expect(await always.record('a')).toMatchObject({ agreed: 1 });
    // Kinds without a known answer are not checked.
    const other = { ...task(), kind: 'text.stats', params: {} };
    expect(await always.judge(b, other, { words: 1 })).toEqual({ action: 'commit', output: { words: 1 }, settle: undefined });
  });
});
