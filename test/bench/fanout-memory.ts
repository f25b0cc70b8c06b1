/**
 * Coordinator memory against the size of one job: a text cut into N chunks fans out to N
 * shard tasks (children added at run time, in batches). The coordinator's resident memory is
 * sampled while the job runs; its peak for a 10,000-shard job is compared with its peak for
 * a 1,000-shard job on the same grid. Flat memory means the fan-out never holds a whole job's
 * shards at once.
 *
 * The grid's processes run with V8's old generation capped at 64 MiB (`--max-old-space-size`):
 * left alone, V8 grows its heap lazily and peak RSS says more about when the collector ran
 * than about what is held. Under the cap a coordinator that kept a job's shards, outcomes or
 * events would run out of memory; one that streams them completes both jobs in the same room.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalGrid } from '@mmgrid/cli';
import { MmgridClient } from '@mmgrid/client';
import { rssMiB, target, type Benchmark } from './harness.js';

/** V8 old-generation cap for the grid's processes in this benchmark. */
export const HEAP_CAP_MIB = 64;

export interface FanOutResult {
  readonly shards: number;
  readonly seconds: number;
  /** Highest resident set of the coordinator process while the job ran, in MiB. */
  readonly peakRssMiB: number;
}

/** A text of `sentences` sentences of about 90 characters: one chunk each at chunkChars 100. */
function text(sentences: number): string {
  return Array.from({ length: sentences }, (_, i) => `Sentence ${i} is one of many, and each of them ends right here with a full stop. `).join('');
}

export async function benchFanOutMemory(sizes: readonly number[]): Promise<{ idleRssMiB: number; results: FanOutResult[] }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bench-fanout-'));
  const grid = await LocalGrid.start({
    dataDir,
    workers: 2,
    workerArgs: ['--slots', 'text.stats=8,text.split=1'],
    env: { NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MIB}` },
  });
  const client = new MmgridClient({ address: grid.address });
  const pid = grid.coordinators[0]?.pid;
  if (pid === undefined) throw new Error('no coordinator process');
  try {
    // Warm up (code paths compiled, pools filled) so the first measured job is not penalised.
    await writeFile(path.join(dataDir, 'warm.txt'), text(200));
    await client.waitForJob((await client.submit([{ path: path.join(dataDir, 'warm.txt') }], { params: { chunkChars: '100' } })).id);
    const idleRssMiB = await rssMiB(pid);
    const results: FanOutResult[] = [];
    for (const shards of sizes) {
      const file = path.join(dataDir, `text-${shards}.txt`);
      await writeFile(file, text(shards));
      let peak = await rssMiB(pid);
      const sampler = setInterval(() => {
        void rssMiB(pid).then((mib) => (peak = Math.max(peak, mib)), () => undefined);
      }, 100);
      const started = performance.now();
      const job = await client.submit([{ path: file }], { params: { chunkChars: '100' } });
      const done = await client.waitForJob(job.id);
      clearInterval(sampler);
      if (done.state !== 'completed') throw new Error(`the ${shards}-shard job ended ${done.state}: ${done.error?.message ?? ''}`);
      const ran = done.tasks.filter((t) => t.shard !== null).length;
      if (ran < shards) throw new Error(`the ${shards}-shard job ran only ${ran} shards`);
      results.push({ shards: ran, seconds: (performance.now() - started) / 1000, peakRssMiB: peak });
    }
    return { idleRssMiB, results };
  } finally {
    client.close();
    await grid.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export const fanOutMemory: Benchmark = {
  name: 'fanout-memory',
  title: 'Coordinator memory against shards in one job',
  async run(ctx) {
    const sizes = ctx.scale === 'smoke' ? [100, 1_000] : [1_000, 10_000];
    const fan = await benchFanOutMemory(sizes);
    const [small, large] = fan.results;
    if (!small || !large) throw new Error('both jobs must run');
    return {
      method: `peak resident memory of the coordinator while one job of N shards runs, V8 old space capped at ${HEAP_CAP_MIB} MiB; idle after warm-up ${fan.idleRssMiB.toFixed(0)} MiB`,
      baseline: `a ${small.shards.toLocaleString('en-US')}-shard job on the same grid`,
      table: {
        columns: ['shards', 'seconds', 'peak RSS MiB', '×baseline'],
        rows: fan.results.map((r) => [r.shards, r.seconds, Math.round(r.peakRssMiB), `×${(r.peakRssMiB / small.peakRssMiB).toFixed(2)}`]),
      },
      targets: [target(`peak memory with ${large.shards / small.shards}× the shards in the same heap cap`, large.peakRssMiB / small.peakRssMiB, '<=', 1.25, '×')],
      figures: Object.fromEntries<number>([
        ['idle_rss_MiB', fan.idleRssMiB],
        ...fan.results.flatMap((r): [string, number][] => [
          [`seconds_${r.shards}`, r.seconds],
          [`peak_rss_MiB_${r.shards}`, r.peakRssMiB],
        ]),
      ]),
    };
  },
};
