/** Every benchmark `pnpm bench` runs, in order. */
import { backlog } from './backlog.js';
import { blobChunks } from './blob-chunks.js';
import { blobs } from './blobs.js';
import { latency, throughput } from './dispatch.js';
import { fanout } from './fanout.js';
import { fanOutMemory } from './fanout-memory.js';
import { fleet } from './fleet.js';
import type { Benchmark } from './harness.js';

export const BENCHMARKS: readonly Benchmark[] = [throughput, latency, blobChunks, fanOutMemory, fleet, backlog, fanout, blobs];
