/**
 * A Byzantine worker for the result-verification tests: a process that speaks the real Connect
 * protocol (as test/bench/fleet-sim.ts does; see packages/worker/src/worker-daemon.ts), offers
 * `selftest.sleep` (or, with `--kind text.stats`, `text.stats` over inline texts), and answers
 * a share of its tasks wrongly (the `index`, or the `words`, of its output off by `--offset`),
 * otherwise like the real handler. Its lies follow a seeded generator, so a run is repeatable.
 *
 *   node --import tsx test/helpers/liar-worker.ts --coordinator HOST:PORT --id liar-1 --lie-rate 0.3 [--slots 2] [--seed 1] [--offset 1] [--kind selftest.sleep]
 *
 * A lie is the right answer plus `--offset` (liars with different offsets never agree).
 *
 * Started with an IPC channel it reports `{ type: 'ready' }` once welcomed and answers
 * `{ type: 'stats' }` with what it did (`LiarStats`); it stops on `stop`, on SIGTERM, or when
 * its parent goes.
 */
import { hostname, cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { resolveConnection } from '@mmgrid/client';
import { textStats } from '@mmgrid/core';
import { WorkerServiceClient, type CoordinatorMessage, type Lease, type TaskAssignment, type WorkerMessage } from '@mmgrid/proto';

export interface LiarStats {
  readonly type: 'stats';
  readonly tasks: number;
  readonly lies: number;
  readonly connected: boolean;
}

const { values: flags } = parseArgs({
  options: {
    coordinator: { type: 'string', default: '127.0.0.1:7070' },
    id: { type: 'string', default: `liar-${process.pid}` },
    'lie-rate': { type: 'string', default: '0.3' },
    slots: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    offset: { type: 'string', default: '1' },
    kind: { type: 'string', default: 'selftest.sleep' },
  },
});
const LIE_RATE = Number(flags['lie-rate']);
const SLOTS = Number(flags.slots);
const OFFSET = Number(flags.offset);
const KIND = flags.kind === 'text.stats' ? 'text.stats' : 'selftest.sleep';
const conn = resolveConnection({ address: flags.coordinator });

/** mulberry32: a small seeded generator, so which answers are lies is repeatable. */
let state = Number(flags.seed) >>> 0;
function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

let tasks = 0;
let lies = 0;
let connected = false;
let stopping = false;
let seq = 0;
const running = new Map<string, { lease: Lease; timer: NodeJS.Timeout }>();
const unacked = new Map<string, { lease: Lease; message: WorkerMessage }>();
const client = new WorkerServiceClient(conn.address, conn.credentials, conn.channelOptions);
let call: ClientDuplexStream<WorkerMessage, CoordinatorMessage> | undefined;
let heartbeat: NodeJS.Timeout | undefined;

function held(): Lease[] {
  return [...[...running.values()].map((r) => r.lease), ...[...unacked.values()].map((u) => u.lease)];
}

function run(assignment: TaskAssignment): void {
  const lease = assignment.lease;
  if (!lease) return;
  const params = JSON.parse(assignment.paramsJson || '{}') as { ms?: number; index?: number };
  const started = Date.now();
  const timer = setTimeout(() => {
    if (!running.delete(lease.leaseId)) return;
    tasks += 1;
    const lie = random() < LIE_RATE;
    if (lie) lies += 1;
    const index = (params.index ?? 0) + (lie ? OFFSET : 0);
    const now = Date.now();
    let outputJson = JSON.stringify({ sleptMs: now - started, attempt: assignment.attempt, index });
    if (assignment.kind === 'text.stats') {
      const stats = textStats(Object.values(assignment.texts)[0] ?? '', 'input');
      outputJson = JSON.stringify({ ...stats, words: stats.words + (lie ? OFFSET : 0) });
    }
    const message: WorkerMessage = {
      msg: {
        $case: 'result',
        result: {
          lease,
          outputJson,
          blobs: [],
          stats: { startedAtMs: started, finishedAtMs: now, device: 'cpu', model: '' },
        },
      },
    };
    unacked.set(lease.leaseId, { lease, message });
    call?.write(message);
  }, assignment.kind === 'text.stats' ? 5 : (params.ms ?? 0));
  running.set(lease.leaseId, { lease, timer });
}

function open(): void {
  const stream = client.connect(conn.metadata());
  call = stream;
  const end = (): void => {
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = undefined;
    connected = false;
    stream.removeAllListeners();
    stream.on('error', () => undefined);
    if (call === stream) call = undefined;
    for (const r of running.values()) clearTimeout(r.timer);
    running.clear();
    if (!stopping) setTimeout(open, 500).unref();
  };
  stream.on('data', (message: CoordinatorMessage) => {
    const msg = message.msg;
    switch (msg?.$case) {
      case 'welcome':
        connected = true;
        heartbeat = setInterval(() => {
          seq += 1;
          stream.write({ msg: { $case: 'heartbeat', heartbeat: { seq, gpus: [], warmModels: [], running: held() } } });
        }, Math.max(100, msg.welcome.heartbeatIntervalMs));
        for (const pending of unacked.values()) stream.write(pending.message);
        process.send?.({ type: 'ready' });
        return;
      case 'assign':
        run(msg.assign);
        return;
      case 'cancel': {
        const id = msg.cancel.lease?.leaseId ?? '';
        const task = running.get(id);
        if (task) clearTimeout(task.timer);
        running.delete(id);
        return;
      }
      case 'ack':
        unacked.delete(msg.ack.lease?.leaseId ?? '');
        return;
      default:
        return;
    }
  });
  stream.on('error', end);
  stream.on('end', end);
  stream.write({
    msg: {
      $case: 'hello',
      hello: {
        workerId: flags.id,
        name: flags.id,
        version: 'liar-worker',
        host: { hostname: hostname(), os: 'linux', arch: process.arch, cpus: cpus().length, memoryBytes: totalmem(), nodeVersion: process.version },
        gpus: [],
        kinds: [{ kind: KIND, slots: SLOTS, models: [] }],
        warmModels: [],
        vramBudgetBytes: 0,
        running: held(),
      },
    },
  });
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  if (heartbeat) clearInterval(heartbeat);
  for (const r of running.values()) clearTimeout(r.timer);
  call?.cancel();
  client.close();
  setTimeout(() => process.exit(0), 100).unref();
}

process.on('message', (request: { type: 'stats' } | { type: 'stop' }) => {
  if (request.type === 'stop') stop();
  else process.send?.({ type: 'stats', tasks, lies, connected } satisfies LiarStats);
});
process.on('disconnect', stop);
process.on('SIGTERM', stop);
open();
