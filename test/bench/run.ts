/**
 * `pnpm bench`: mmgrid's benchmarks. Each prints its measurements as ratios against a
 * baseline measured in the same run, checks them against a target, and the run exits 1 when
 * a target is missed. Sized for a 2-core machine; see docs/benchmarks.md for what each
 * measures and the numbers of a reference run.
 */
import { BLOB_CHUNK_BYTES } from '@mmgrid/core';
import { benchBlobChunks } from './blob-chunks.js';
import { benchFanOutMemory, HEAP_CAP_MIB } from './fanout-memory.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let missed = 0;

function check(what: string, ok: boolean, detail: string): void {
  if (!ok) missed += 1;
  process.stdout.write(`  ${ok ? 'PASS' : 'MISS'} ${what}: ${detail}\n`);
}

const fmtSize = (bytes: number): string => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes / KiB} KiB`);

process.stdout.write('\nBlob message size (64 MiB up and down through a BlobService in another process, median of 7; baseline: 64 KiB messages, the usual advice for gRPC streaming)\n');
const sizes = [16 * KiB, 64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 1 * MiB];
const blobs = await benchBlobChunks({ sizes, payloadBytes: 64 * MiB, runs: 7 });
const base = blobs.find((r) => r.chunkBytes === 64 * KiB);
if (!base) throw new Error('no baseline');
process.stdout.write('  message    upload MB/s  ×64 KiB  download MB/s  ×64 KiB  CPU ms/MiB  ×64 KiB\n');
const ratio = (x: number, y: number): string => (x / y).toFixed(2).padStart(6);
for (const r of blobs) {
  process.stdout.write(
    `  ${fmtSize(r.chunkBytes).padEnd(9)}  ${r.uploadMBps.toFixed(0).padStart(11)}  ${ratio(r.uploadMBps, base.uploadMBps)}  ${r.downloadMBps.toFixed(0).padStart(13)}  ${ratio(
      r.downloadMBps,
      base.downloadMBps,
    )}  ${r.cpuMsPerMiB.toFixed(2).padStart(11)}  ${ratio(r.cpuMsPerMiB, base.cpuMsPerMiB)}${r.chunkBytes === BLOB_CHUNK_BYTES ? '   ← BLOB_CHUNK_BYTES' : ''}\n`,
  );
}
const chosen = blobs.find((r) => r.chunkBytes === BLOB_CHUNK_BYTES);
if (!chosen) throw new Error(`BLOB_CHUNK_BYTES (${BLOB_CHUNK_BYTES}) is not among the sizes measured`);
const cheapest = blobs.reduce((a, b) => (b.cpuMsPerMiB < a.cpuMsPerMiB ? b : a));
// CPU time is the steady measure on a small, shared machine; wall-clock speed swings with
// whatever else runs, so it is reported but the targets are on CPU.
// Run to run, one size's CPU figure moves by about ±10% on a 2-core machine, so two sizes that
// cost the same can differ by 20%: a size within 25% of the cheapest cannot be told apart
// from it here. (16 KiB messages are the ones that reliably cost more.)
check('BLOB_CHUNK_BYTES is within noise (25%) of the cheapest size measured', chosen.cpuMsPerMiB <= cheapest.cpuMsPerMiB * 1.25, `×${(chosen.cpuMsPerMiB / cheapest.cpuMsPerMiB).toFixed(2)} of the cheapest, ${fmtSize(cheapest.chunkBytes)} at ${cheapest.cpuMsPerMiB.toFixed(2)} ms/MiB`);

process.stdout.write(`\nCoordinator memory against shards in one job (peak resident memory while the job runs, V8 old space capped at ${HEAP_CAP_MIB} MiB; baseline: a 1,000-shard job)\n`);
const fan = await benchFanOutMemory([1_000, 10_000]);
process.stdout.write(`  idle after warm-up: ${fan.idleRssMiB.toFixed(0)} MiB\n  shards   seconds  peak RSS MiB  ×1,000-shard peak\n`);
const [small, large] = fan.results;
for (const r of fan.results) {
  process.stdout.write(`  ${String(r.shards).padStart(6)}  ${r.seconds.toFixed(1).padStart(8)}  ${r.peakRssMiB.toFixed(0).padStart(12)}  ${(r.peakRssMiB / (small?.peakRssMiB ?? 1)).toFixed(2).padStart(17)}\n`);
}
if (small && large) {
  check('10× the shards in the same heap cap, coordinator peak memory at most 1.25×', large.peakRssMiB <= small.peakRssMiB * 1.25, `×${(large.peakRssMiB / small.peakRssMiB).toFixed(2)}`);
}

process.stdout.write(missed === 0 ? '\nall targets met\n' : `\n${missed} target(s) missed\n`);
process.exit(missed === 0 ? 0 : 1);
