/**
 * Blob upload and download throughput through the real coordinator against grpc-js alone.
 *
 * The grid: a coordinator process (LocalGrid, no workers) with its default filesystem blob
 * store under the data folder; this process uploads with BlobClient.uploadBytes and downloads
 * with downloadBytes, so the client hashes before sending and after receiving, and the
 * coordinator hashes, writes and fsyncs on the way in and reads the file on the way out, as
 * always. The baseline: a bare grpc-js server in another process (raw-stream-server.ts) and a
 * bare client moving the same bytes in messages of the same size (BLOB_CHUNK_BYTES), a
 * client-streaming upload and a server-streaming download with backpressure, and nothing else:
 * no protobuf, no hashing, no disk.
 *
 * Both run in the same rounds, alternating which goes first, on fresh random bytes each round;
 * each figure is the median over the rounds. CPU per MiB is given for each side (this process
 * is the client; the server is the coordinator or the bare server). Reference figures for the
 * parts of the grid's work that the baseline does not do (SHA-256, writing with fsync and
 * reading the data folder's disk) are measured in this process, so a missed target can be
 * read against them.
 *
 * To profile the coordinator: MMGRID_BENCH_COORDINATOR_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR"
 * (its NODE_OPTIONS; the profile is written when the grid stops).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, credentials } from '@grpc/grpc-js';
import { LocalGrid } from '@mmgrid/cli';
import { BlobClient, resolveConnection } from '@mmgrid/client';
import { BLOB_CHUNK_BYTES } from '@mmgrid/core';
import { cpuMsOf, median, ownCpuMs, target, type Benchmark } from './harness.js';
import { RAW_STREAM_SERVICE } from './raw-stream-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;
const TARGET_RATIO = 0.7;

/** One transfer: its speed and the CPU each side spent on it. */
interface Transfer {
  readonly MBps: number;
  readonly clientCpuMsPerMiB: number;
  readonly serverCpuMsPerMiB: number;
}

interface Side {
  /** The server's process id, for its CPU time. */
  readonly pid: number;
  upload(bytes: Buffer): Promise<void>;
  download(): Promise<void>;
  close(): Promise<void>;
}

async function measure(bytes: number, pid: number, work: () => Promise<void>): Promise<Transfer> {
  const client = ownCpuMs();
  const server = await cpuMsOf(pid);
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  const mib = bytes / MiB;
  return { MBps: bytes / 1e6 / seconds, clientCpuMsPerMiB: (ownCpuMs() - client) / mib, serverCpuMsPerMiB: ((await cpuMsOf(pid)) - server) / mib };
}

async function startGrid(dataDir: string): Promise<Side> {
  const nodeOptions = process.env['MMGRID_BENCH_COORDINATOR_NODE_OPTIONS'];
  const grid = await LocalGrid.start({ dataDir, workers: 0, env: { MMGRID_LOG_LEVEL: 'warn', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) } });
  const blobs = new BlobClient(resolveConnection({ address: grid.address }));
  let last = '';
  let lastSize = 0;
  return {
    pid: grid.coordinator.pid ?? 0,
    async upload(bytes) {
      const { blob } = await blobs.uploadBytes(bytes, { name: 'payload.bin', mediaType: 'application/octet-stream' });
      last = blob.sha256;
      lastSize = bytes.byteLength;
    },
    async download() {
      const got = await blobs.downloadBytes(last);
      if (got.byteLength !== lastSize) throw new Error(`downloaded ${got.byteLength} bytes, uploaded ${lastSize}`);
    },
    async close() {
      blobs.close();
      await grid.stop();
    },
  };
}

async function startRaw(): Promise<Side> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'raw-stream-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [data] = (await once(child.stdout ?? child, 'data')) as [Buffer];
  const client = new Client(`127.0.0.1:${data.toString().trim()}`, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 8 * MiB,
    'grpc.max_send_message_length': 8 * MiB,
  });
  const identity = (b: Buffer): Buffer => b;
  const { upload, download } = RAW_STREAM_SERVICE;
  if (!upload || !download) throw new Error('the raw service must define upload and download');
  let lastSize = 0;
  return {
    pid: child.pid ?? 0,
    async upload(bytes) {
      await new Promise<void>((resolve, reject) => {
        const call = client.makeClientStreamRequest<Buffer, Buffer>(upload.path, identity, identity, (err, reply) => {
          if (err) reject(err);
          else if (reply && Number(reply.readBigUInt64BE()) === bytes.byteLength) resolve();
          else reject(new Error('the raw server received the wrong number of bytes'));
        });
        const send = async (): Promise<void> => {
          for (let at = 0; at < bytes.byteLength; at += BLOB_CHUNK_BYTES) {
            if (!call.write(bytes.subarray(at, Math.min(bytes.byteLength, at + BLOB_CHUNK_BYTES)))) await once(call, 'drain');
          }
          call.end();
        };
        send().catch(reject);
      });
      lastSize = bytes.byteLength;
    },
    async download() {
      let size = 0;
      const parts: Buffer[] = [];
      for await (const part of client.makeServerStreamRequest<Buffer, Buffer>(download.path, identity, identity, Buffer.alloc(0)) as AsyncIterable<Buffer>) {
        parts.push(part);
        size += part.byteLength;
      }
      if (size !== lastSize) throw new Error(`downloaded ${size} bytes, uploaded ${lastSize}`);
    },
    async close() {
      client.close();
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** What the grid does that the baseline does not, measured alone in this process (MB/s). */
async function references(dir: string, payload: Buffer): Promise<{ sha256MBps: number; writeFsyncMBps: number; readMBps: number }> {
  const mb = payload.byteLength / 1e6;
  let t = performance.now();
  createHash('sha256').update(payload).digest('hex');
  const sha256MBps = mb / ((performance.now() - t) / 1000);
  const file = path.join(dir, 'reference.bin');
  t = performance.now();
  const handle = await open(file, 'w');
  for (let at = 0; at < payload.byteLength; at += BLOB_CHUNK_BYTES) await handle.write(payload.subarray(at, Math.min(payload.byteLength, at + BLOB_CHUNK_BYTES)));
  await handle.sync();
  await handle.close();
  const writeFsyncMBps = mb / ((performance.now() - t) / 1000);
  t = performance.now();
  await readFile(file);
  const readMBps = mb / ((performance.now() - t) / 1000);
  await rm(file);
  return { sha256MBps, writeFsyncMBps, readMBps };
}

export const blobs: Benchmark = {
  name: 'blobs',
  title: 'Blob upload and download throughput',
  async run(ctx) {
    const bytes = ctx.scale === 'smoke' ? 8 * 1e6 : ctx.scale === 'full' ? 1000 * 1e6 : 200 * 1e6;
    const rounds = ctx.scale === 'smoke' ? 1 : 5;
    const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bench-blobs-'));
    const sides: Side[] = [];
    try {
      const grid = await startGrid(dataDir);
      sides.push(grid);
      const raw = await startRaw();
      sides.push(raw);
      const payload = Buffer.alloc(bytes);
      // Warm-up: code compiled, connections open, windows grown.
      randomFillSync(payload, 0, Math.min(bytes, 8 * MiB));
      for (const side of [grid, raw]) {
        await side.upload(payload.subarray(0, Math.min(bytes, 8 * MiB)));
        await side.download();
      }
      const results = { gridUp: [] as Transfer[], gridDown: [] as Transfer[], rawUp: [] as Transfer[], rawDown: [] as Transfer[] };
      for (let r = 0; r < rounds; r++) {
        // Fresh bytes every round, so no upload is deduplicated; the same bytes on both sides.
        randomFillSync(payload);
        const onGrid = async (): Promise<void> => {
          results.gridUp.push(await measure(bytes, grid.pid, () => grid.upload(payload)));
          results.gridDown.push(await measure(bytes, grid.pid, () => grid.download()));
        };
        const onRaw = async (): Promise<void> => {
          results.rawUp.push(await measure(bytes, raw.pid, () => raw.upload(payload)));
          results.rawDown.push(await measure(bytes, raw.pid, () => raw.download()));
        };
        if (r % 2 === 0) {
          await onGrid();
          await onRaw();
        } else {
          await onRaw();
          await onGrid();
        }
        const last = (xs: Transfer[]): string => (xs.at(-1)?.MBps ?? 0).toFixed(0);
        ctx.log(`round ${r + 1}: up ${last(results.gridUp)} vs ${last(results.rawUp)} MB/s, down ${last(results.gridDown)} vs ${last(results.rawDown)} MB/s (grid vs raw)`);
      }
      const ref = await references(dataDir, payload);
      const med = (xs: Transfer[], k: keyof Transfer): number => median(xs.map((x) => x[k]));
      const row = (name: string, xs: Transfer[], base: Transfer[]): (string | number)[] => [
        name,
        Math.round(med(xs, 'MBps')),
        `×${(med(xs, 'MBps') / med(base, 'MBps')).toFixed(2)}`,
        med(xs, 'clientCpuMsPerMiB'),
        med(xs, 'serverCpuMsPerMiB'),
      ];
      const upRatio = med(results.gridUp, 'MBps') / med(results.rawUp, 'MBps');
      const downRatio = med(results.gridDown, 'MBps') / med(results.rawDown, 'MBps');
      const figures: Record<string, number> = { bytes, rounds, chunk_bytes: BLOB_CHUNK_BYTES, upload_ratio: upRatio, download_ratio: downRatio };
      for (const [name, xs] of Object.entries(results)) {
        figures[`${name}_MBps`] = med(xs, 'MBps');
        figures[`${name}_client_cpu_ms_per_MiB`] = med(xs, 'clientCpuMsPerMiB');
        figures[`${name}_server_cpu_ms_per_MiB`] = med(xs, 'serverCpuMsPerMiB');
      }
      figures['reference_sha256_MBps'] = ref.sha256MBps;
      figures['reference_write_fsync_MBps'] = ref.writeFsyncMBps;
      figures['reference_read_MBps'] = ref.readMBps;
      const mb = (bytes / 1e6).toFixed(0);
      return {
        method: `${mb} MB in ${BLOB_CHUNK_BYTES / 1024} KiB messages: BlobClient.uploadBytes then downloadBytes through a coordinator process with its filesystem store (hashed both ends, written with fsync); median of ${rounds} rounds`,
        baseline: 'bare grpc-js, server in another process: the same bytes in messages of the same size, a client-streaming upload and a server-streaming download, no protobuf, hashing or disk; same rounds, alternating first',
        table: {
          columns: ['', 'MB/s', '×raw', 'client CPU ms/MiB', 'server CPU ms/MiB'],
          rows: [row('grid upload', results.gridUp, results.rawUp), row('raw upload', results.rawUp, results.rawUp), row('grid download', results.gridDown, results.rawDown), row('raw download', results.rawDown, results.rawDown)],
        },
        targets: [target('grid ÷ raw upload throughput', upRatio, '>=', TARGET_RATIO, '×'), target('grid ÷ raw download throughput', downRatio, '>=', TARGET_RATIO, '×')],
        figures,
        notes: [
          `alone in one process on this machine: SHA-256 ${ref.sha256MBps.toFixed(0)} MB/s, write + fsync to the data folder ${ref.writeFsyncMBps.toFixed(0)} MB/s, read it back (page cache) ${ref.readMBps.toFixed(0)} MB/s`,
          'the grid hashes an upload twice (the client before sending, the coordinator as it arrives) and a download once (the client); the baseline hashes nothing',
        ],
      };
    } finally {
      for (const side of sides.reverse()) await side.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};
