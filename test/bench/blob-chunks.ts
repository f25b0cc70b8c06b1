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
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobClient, resolveConnection } from '@mmgrid/client';

export interface ChunkResult {
  readonly chunkBytes: number;
  /** Median MB/s over the runs. */
  readonly uploadMBps: number;
  readonly downloadMBps: number;
  /** Median CPU time of both processes (client and server, user + system) per MiB moved, up and down. */
  readonly cpuMsPerMiB: number;
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux). */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Kernel clock ticks per second (USER_HZ), 100 on every Linux that matters. */
const CLOCK_TICKS = 100;

function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
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

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

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
