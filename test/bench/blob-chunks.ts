/**
 * How big a BlobService message should be: uploads and downloads (hashed and checked on both
 * ends, as always) of the same bytes through a real BlobService in another process, at
 * several message sizes. Bytes stay in memory on both sides, so what is measured is gRPC,
 * protobuf and hashing, which the message size changes, and not the disk, which it does not.
 * The baseline is 1 MiB messages, the size one would guess.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BLOB_CHUNK_BYTES } from '@mmgrid/core';
import { BlobClient, resolveConnection } from '@mmgrid/client';
import { cpuMsOf, median, ownCpuMs, target, type Benchmark } from './harness.js';

export interface ChunkResult {
  readonly chunkBytes: number;
  /** Median MB/s over the runs. */
  readonly uploadMBps: number;
  readonly downloadMBps: number;
  /** Median CPU time of both processes (client and server, user + system) per MiB moved, up and down. */
  readonly cpuMsPerMiB: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

async function startServer(chunkBytes: number): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'blob-server.ts'), String(chunkBytes)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MMGRID_LOG_LEVEL: 'warn' },
  });
  const [data] = (await once(child.stdout ?? child, 'data')) as [Buffer];
  return { child, address: `127.0.0.1:${data.toString().trim()}` };
}

export async function benchBlobChunks(options: { sizes: readonly number[]; payloadBytes: number; runs: number }): Promise<ChunkResult[]> {
  // One server per size, all up at once; runs go round the sizes in turn (starting at a
  // different one each run) so drift in the machine's speed falls on every size alike.
  const servers = await Promise.all(options.sizes.map((chunkBytes) => startServer(chunkBytes)));
  const clients = options.sizes.map((chunkBytes, i) => new BlobClient(resolveConnection({ address: servers[i]?.address ?? '' }), { chunkBytes }));
  const up: number[][] = options.sizes.map(() => []);
  const down: number[][] = options.sizes.map(() => []);
  const cpu: number[][] = options.sizes.map(() => []);
  try {
    const payload = Buffer.alloc(options.payloadBytes);
    for (let run = 0; run < options.runs; run++) {
      for (let k = 0; k < options.sizes.length; k++) {
        const i = (run + k) % options.sizes.length;
        const blobs = clients[i];
        if (!blobs) continue;
        // Fresh bytes every time, so nothing is deduplicated.
        randomFillSync(payload);
        const pid = servers[i]?.child.pid ?? 0;
        const cpuBefore = ownCpuMs() + (await cpuMsOf(pid));
        let t = performance.now();
        const { blob } = await blobs.uploadBytes(payload, { name: 'payload.bin', mediaType: 'application/octet-stream' });
        up[i]?.push(options.payloadBytes / 1e6 / ((performance.now() - t) / 1000));
        t = performance.now();
        await blobs.downloadBytes(blob.sha256);
        down[i]?.push(options.payloadBytes / 1e6 / ((performance.now() - t) / 1000));
        cpu[i]?.push((ownCpuMs() + (await cpuMsOf(pid)) - cpuBefore) / ((2 * options.payloadBytes) / (1024 * 1024)));
      }
    }
  } finally {
    for (const c of clients) c.close();
    await Promise.all(
      servers.map(async ({ child }) => {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }),
    );
  }
  return options.sizes.map((chunkBytes, i) => ({ chunkBytes, uploadMBps: median(up[i] ?? []), downloadMBps: median(down[i] ?? []), cpuMsPerMiB: median(cpu[i] ?? []) }));
}

const KiB = 1024;
const MiB = 1024 * KiB;
const fmtSize = (bytes: number): string => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`);

export const blobChunks: Benchmark = {
  name: 'blob-chunks',
  title: 'Blob message size',
  async run(ctx) {
    const sizes = [16 * KiB, 64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 1 * MiB];
    const payloadBytes = ctx.scale === 'smoke' ? 1 * MiB : 64 * MiB;
    const runs = ctx.scale === 'smoke' ? 1 : 7;
    const results = await benchBlobChunks({ sizes, payloadBytes, runs });
    const base = results.find((r) => r.chunkBytes === 64 * KiB);
    const chosen = results.find((r) => r.chunkBytes === BLOB_CHUNK_BYTES);
    if (!base || !chosen) throw new Error(`64 KiB and BLOB_CHUNK_BYTES (${BLOB_CHUNK_BYTES}) must be among the sizes measured`);
    const cheapest = results.reduce((a, b) => (b.cpuMsPerMiB < a.cpuMsPerMiB ? b : a));
    const x = (a: number, b: number): string => `×${(a / b).toFixed(2)}`;
    return {
      method: `${fmtSize(payloadBytes)} up and down through a BlobService in another process at each message size, median of ${runs}; CPU of both processes per MiB moved`,
      baseline: '64 KiB messages, the usual advice for gRPC streaming',
      table: {
        columns: ['message', 'upload MB/s', '×', 'download MB/s', '×', 'CPU ms/MiB', '×', ''],
        rows: results.map((r) => [
          fmtSize(r.chunkBytes),
          Math.round(r.uploadMBps),
          x(r.uploadMBps, base.uploadMBps),
          Math.round(r.downloadMBps),
          x(r.downloadMBps, base.downloadMBps),
          r.cpuMsPerMiB,
          x(r.cpuMsPerMiB, base.cpuMsPerMiB),
          r.chunkBytes === BLOB_CHUNK_BYTES ? '← BLOB_CHUNK_BYTES' : '',
        ]),
      },
      // CPU time is the steady measure on a small, shared machine. Run to run, one size's CPU
      // figure moves by about ±10% on a 2-core machine, so a size within 25% of the cheapest
      // cannot be told apart from it here.
      targets: [target('BLOB_CHUNK_BYTES CPU per byte ÷ the cheapest size measured (noise: ±25%)', chosen.cpuMsPerMiB / cheapest.cpuMsPerMiB, '<=', 1.25, '×')],
      figures: Object.fromEntries(
        results.flatMap((r) => [
          [`upload_MBps_${r.chunkBytes}`, r.uploadMBps],
          [`download_MBps_${r.chunkBytes}`, r.downloadMBps],
          [`cpu_ms_per_MiB_${r.chunkBytes}`, r.cpuMsPerMiB],
        ]),
      ),
    };
  },
};
