import { execFile } from 'node:child_process';
import type { GpuInfo, GpuStats } from '@mmgrid/proto';

const MiB = 1024 * 1024;

/** The fields asked of `nvidia-smi --query-gpu`, in order. */
export const QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'compute_cap',
  'driver_version',
] as const;

/** One GPU as `nvidia-smi` reports it. Numbers it could not report are NaN. */
export interface NvidiaGpu {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  readonly memoryTotalBytes: number;
  readonly memoryUsedBytes: number;
  readonly memoryFreeBytes: number;
  readonly utilizationPercent: number;
  readonly temperatureCelsius: number;
  readonly powerWatts: number;
  /** "major.minor", or "" when the driver is too old to say. */
  readonly computeCapability: string;
  readonly driverVersion: string;
}

function num(value: string | undefined): number {
  if (value === undefined) return Number.NaN;
  const v = value.trim();
  // "[N/A]", "[Not Supported]", "[Unknown Error]"…
  if (v === '' || v.startsWith('[') || v === 'N/A') return Number.NaN;
  return Number(v);
}

function text(value: string | undefined): string {
  const v = (value ?? '').trim();
  return v.startsWith('[') || v === 'N/A' ? '' : v;
}

/**
 * Parses `nvidia-smi --query-gpu=<QUERY_FIELDS or all but compute_cap> --format=csv,noheader,nounits`.
 * Lines that are not GPU rows (blank, warnings) are skipped.
 */
export function parseQueryGpu(output: string, fields: readonly string[] = QUERY_FIELDS): NvidiaGpu[] {
  const gpus: NvidiaGpu[] = [];
  for (const line of output.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== fields.length) continue;
    const get = (field: string): string | undefined => cells[fields.indexOf(field)];
    const index = num(get('index'));
    const uuid = text(get('uuid'));
    if (!Number.isInteger(index) || uuid === '') continue;
    gpus.push({
      index,
      uuid,
      name: text(get('name')),
      memoryTotalBytes: num(get('memory.total')) * MiB,
      memoryUsedBytes: num(get('memory.used')) * MiB,
      memoryFreeBytes: num(get('memory.free')) * MiB,
      utilizationPercent: num(get('utilization.gpu')),
      temperatureCelsius: num(get('temperature.gpu')),
      powerWatts: num(get('power.draw')),
      computeCapability: fields.includes('compute_cap') ? text(get('compute_cap')) : '',
      driverVersion: text(get('driver_version')),
    });
  }
  return gpus;
}

/** The CUDA version from the banner of plain `nvidia-smi` ("CUDA Version: 12.4"), or "". */
export function parseCudaVersion(banner: string): string {
  return /CUDA Version:\s*([\d.]+)/.exec(banner)?.[1] ?? '';
}

function run(command: string, args: readonly string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; error: Error | undefined }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => resolve({ stdout, stderr, error: error ?? undefined }));
  });
}

export type ProbeResult =
  | { readonly ok: true; readonly gpus: readonly NvidiaGpu[]; readonly cudaVersion: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Asks nvidia-smi what GPUs this machine has. A machine without nvidia-smi (or whose driver
 * does not answer) has none, and the reason says why.
 */
export async function probeNvidiaGpus(command = 'nvidia-smi', timeoutMs = 10_000): Promise<ProbeResult> {
  const query = async (fields: readonly string[]) => run(command, [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], timeoutMs);
  let fields: readonly string[] = QUERY_FIELDS;
  let result = await query(fields);
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, reason: 'nvidia-smi is not installed (no NVIDIA driver)' };
  // What nvidia-smi said, not the error's message: that repeats the command line, compute_cap included.
  if (result.error && /compute_cap/.test(result.stdout + result.stderr)) {
    // Drivers before 510 do not know compute_cap.
    fields = QUERY_FIELDS.filter((f) => f !== 'compute_cap');
    result = await query(fields);
  }
  if (result.error) return { ok: false, reason: `nvidia-smi failed: ${firstLine(`${result.stderr}\n${result.stdout}\n${result.error.message}`)}` };
  const gpus = parseQueryGpu(result.stdout, fields);
  const banner = await run(command, [], timeoutMs);
  return { ok: true, gpus, cudaVersion: banner.error ? '' : parseCudaVersion(banner.stdout) };
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'no output';
}

export function toGpuInfo(gpu: NvidiaGpu, cudaVersion: string): GpuInfo {
  return {
    uuid: gpu.uuid,
    name: gpu.name,
    memoryTotalBytes: finite(gpu.memoryTotalBytes),
    memoryFreeBytes: finite(gpu.memoryFreeBytes),
    computeCapability: gpu.computeCapability,
    driverVersion: gpu.driverVersion,
    cudaVersion,
  };
}

export function toGpuStats(gpu: NvidiaGpu): GpuStats {
  return {
    uuid: gpu.uuid,
    utilizationPercent: finite(gpu.utilizationPercent),
    memoryUsedBytes: finite(gpu.memoryUsedBytes),
    memoryTotalBytes: finite(gpu.memoryTotalBytes),
    temperatureCelsius: finite(gpu.temperatureCelsius),
    powerWatts: finite(gpu.powerWatts),
  };
}

function finite(n: number): number {
  return Number.isFinite(n) ? n : 0;
}
