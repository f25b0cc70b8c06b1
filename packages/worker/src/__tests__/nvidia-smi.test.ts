import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCudaVersion, parseQueryGpu, probeNvidiaGpus, QUERY_FIELDS, toGpuInfo, toGpuStats, type NvidiaGpu } from '../gpu/nvidia-smi.js';

const MiB = 1024 * 1024;
const FIXTURES = fileURLToPath(new URL('./fixtures/nvidia-smi/', import.meta.url));
const fixturePath = (name: string): string => path.join(FIXTURES, name);
const fixture = (name: string): string => readFileSync(fixturePath(name), 'utf8');

const OLD_FIELDS = QUERY_FIELDS.filter((f) => f !== 'compute_cap');

const rtx4090: NvidiaGpu = {
  index: 0,
  uuid: 'GPU-5d2c1b5e-7a1f-4c1e-9b7e-1f2a3b4c5d6e',
  name: 'NVIDIA GeForce RTX 4090',
  memoryTotalBytes: 24_564 * MiB,
  memoryUsedBytes: 1234 * MiB,
  memoryFreeBytes: 23_330 * MiB,
  utilizationPercent: 7,
  temperatureCelsius: 41,
  powerWatts: 34.56,
  computeCapability: '8.9',
  driverVersion: '550.54.15',
};

describe('QUERY_FIELDS', () => {
  it('asks for the fields the parser reads, compute_cap among them', () => {
    expect(QUERY_FIELDS).toEqual([
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
    ]);
    expect(OLD_FIELDS).toHaveLength(10);
  });
});

describe('parseQueryGpu', () => {
  it('one GPU', () => {
    expect(parseQueryGpu(fixture('one-gpu.txt'))).toEqual([rtx4090]);
  });

  it('four A100s, in order, with their own figures', () => {
    const gpus = parseQueryGpu(fixture('four-a100.txt'));
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(4);
    for (const g of gpus) {
      expect(g.name).toBe('NVIDIA A100-SXM4-80GB');
      expect(g.memoryTotalBytes).toBe(81_920 * MiB);
      expect(g.computeCapability).toBe('8.0');
      expect(g.driverVersion).toBe('535.129.03');
    }
    expect(gpus[1]).toMatchObject({
      uuid: 'GPU-1f2e3d4c-5b6a-7980-8a9b-0c1d2e3f4a5b',
      memoryUsedBytes: 40_961 * MiB,
      memoryFreeBytes: 40_093 * MiB,
      utilizationPercent: 97,
      temperatureCelsius: 58,
      powerWatts: 312.87,
    });
    expect(gpus.map((g) => g.memoryFreeBytes / MiB)).toEqual([81_050, 40_093, 2931, 81_050]);
  });

  it('MIG-enabled A100: "[N/A]" numbers are NaN, the rest is read', () => {
    const [first, second, ...rest] = parseQueryGpu(fixture('mig-a100.txt'));
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ index: 0, memoryTotalBytes: 40_960 * MiB, memoryUsedBytes: 13 * MiB, memoryFreeBytes: 40_444 * MiB, temperatureCelsius: 33, powerWatts: 54.12, computeCapability: '8.0' });
    expect(first?.utilizationPercent).toBeNaN();
    expect(second?.memoryTotalBytes).toBe(40_960 * MiB);
    expect(second?.memoryUsedBytes).toBeNaN();
    expect(second?.memoryFreeBytes).toBeNaN();
    expect(second?.utilizationPercent).toBeNaN();
    expect(second?.driverVersion).toBe('535.104.05');
  });

  it('older driver without compute_cap, parsed with the 10 fields asked', () => {
    const gpus = parseQueryGpu(fixture('old-driver.txt'), OLD_FIELDS);
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-3e4f5a6b-7c8d-9e0f-1a2b-3c4d5e6f7a8b',
        name: 'Tesla T4',
        memoryTotalBytes: 15_109 * MiB,
        memoryUsedBytes: 0,
        memoryFreeBytes: 15_109 * MiB,
        utilizationPercent: 0,
        temperatureCelsius: 36,
        powerWatts: 9.87,
        computeCapability: '',
        driverVersion: '470.82.01',
      },
      {
        index: 1,
        uuid: 'GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0',
        name: 'Tesla T4',
        memoryTotalBytes: 15_109 * MiB,
        memoryUsedBytes: 2270 * MiB,
        memoryFreeBytes: 12_839 * MiB,
        utilizationPercent: 43,
        temperatureCelsius: 52,
        powerWatts: 38.41,
        computeCapability: '',
        driverVersion: '470.82.01',
      },
    ]);
  });

  it('older driver output read with the full field list yields nothing (the cell count differs)', () => {
    expect(parseQueryGpu(fixture('old-driver.txt'))).toEqual([]);
  });

  it('"[Not Supported]" power is NaN', () => {
    const [gpu] = parseQueryGpu(fixture('not-supported-power.txt'));
    expect(gpu).toMatchObject({ name: 'NVIDIA GeForce GTX 1650', memoryFreeBytes: 3621 * MiB, computeCapability: '7.5', temperatureCelsius: 48 });
    expect(gpu?.powerWatts).toBeNaN();
  });

  it('skips blank lines, warnings and error lines', () => {
    const gpus = parseQueryGpu(fixture('noise.txt'));
    expect(gpus.map((g) => [g.index, g.name, g.computeCapability])).toEqual([
      [0, 'NVIDIA GeForce RTX 4090', '8.9'],
      [2, 'NVIDIA GeForce RTX 3090', '8.6'],
    ]);
    expect(gpus[0]).toEqual(rtx4090);
  });

  it('reads Windows line endings', () => {
    expect(parseQueryGpu(fixture('one-gpu.txt').replace(/\n/g, '\r\n'))).toEqual([rtx4090]);
  });

  it.each([
    { name: 'empty output', output: '' },
    { name: 'only whitespace', output: '\n  \n\t\n' },
    { name: 'no devices', output: 'No devices were found\n' },
    { name: 'a header line', output: 'index, uuid, name, memory.total [MiB], memory.used [MiB], memory.free [MiB], utilization.gpu [%], temperature.gpu, power.draw [W], compute_cap, driver_version\n' },
    { name: 'index not a number', output: 'x, GPU-1, NVIDIA A10, 23028, 0, 22515, 0, 30, 15.2, 8.6, 550.54.15\n' },
    { name: 'index not whole', output: '0.5, GPU-1, NVIDIA A10, 23028, 0, 22515, 0, 30, 15.2, 8.6, 550.54.15\n' },
    { name: 'uuid unavailable', output: '0, [N/A], NVIDIA A10, 23028, 0, 22515, 0, 30, 15.2, 8.6, 550.54.15\n' },
    { name: 'a cell too few', output: '0, GPU-1, NVIDIA A10, 23028, 0, 22515, 0, 30, 15.2, 8.6\n' },
    { name: 'a cell too many', output: '0, GPU-1, NVIDIA A10, 23028, 0, 22515, 0, 30, 15.2, 8.6, 550.54.15, extra\n' },
  ])('no GPU from $name', ({ output }) => {
    expect(parseQueryGpu(output)).toEqual([]);
  });

  it.each([
    { name: '"N/A" without brackets', cell: 'N/A' },
    { name: '"[Unknown Error]"', cell: '[Unknown Error]' },
    { name: 'an empty cell', cell: '' },
  ])('numbers given as $name are NaN, text as ""', ({ cell }) => {
    const [gpu] = parseQueryGpu(`0, GPU-1, ${cell}, ${cell}, 0, 22515, ${cell}, 30, ${cell}, ${cell}, ${cell}\n`);
    expect(gpu?.name).toBe('');
    expect(gpu?.memoryTotalBytes).toBeNaN();
    expect(gpu?.utilizationPercent).toBeNaN();
    expect(gpu?.powerWatts).toBeNaN();
    expect(gpu?.computeCapability).toBe('');
    expect(gpu?.driverVersion).toBe('');
    expect(gpu?.memoryFreeBytes).toBe(22_515 * MiB);
  });
});

describe('the output of a real H100', () => {
  // Captured on an NVIDIA H100 80GB HBM3 (driver 580.159.04, CUDA 13.0) with the exact
  // command the worker runs: nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits.
  it('parses the query rows', () => {
    expect(parseQueryGpu(fixture('h100-real.txt'))).toEqual([
      {
        index: 0,
        uuid: 'GPU-3453183f-d425-6585-e497-cdb6ae642f84',
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalBytes: 81_559 * MiB,
        memoryUsedBytes: 0,
        memoryFreeBytes: 81_079 * MiB,
        utilizationPercent: 0,
        temperatureCelsius: 39,
        powerWatts: 71.43,
        computeCapability: '9.0',
        driverVersion: '580.159.04',
      },
    ]);
  });

  it('reads the CUDA version from its banner', () => {
    expect(parseCudaVersion(fixture('h100-real-banner.txt'))).toBe('13.0');
  });
});

describe('parseCudaVersion', () => {
  it.each([
    { name: 'the full banner', banner: fixture('banner.txt'), version: '12.4' },
    { name: 'the banner line alone', banner: fixture('banner-line.txt'), version: '12.4' },
    { name: 'an older driver’s banner', banner: fixture('banner-old-driver.txt'), version: '11.4' },
    { name: 'a three-part version', banner: '| NVIDIA-SMI 555.42.02  Driver Version: 555.42.02  CUDA Version: 12.5.1 |', version: '12.5.1' },
    { name: 'no banner', banner: '', version: '' },
    { name: 'the driver failure message', banner: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", version: '' },
    { name: 'CUDA version not available', banner: '| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: N/A |', version: '' },
  ])('$name → "$version"', ({ banner, version }) => {
    expect(parseCudaVersion(banner)).toBe(version);
  });
});

describe('toGpuInfo and toGpuStats', () => {
  it('one GPU', () => {
    expect(toGpuInfo(rtx4090, '12.4')).toEqual({
      uuid: rtx4090.uuid,
      name: 'NVIDIA GeForce RTX 4090',
      memoryTotalBytes: 24_564 * MiB,
      memoryFreeBytes: 23_330 * MiB,
      computeCapability: '8.9',
      driverVersion: '550.54.15',
      cudaVersion: '12.4',
    });
    expect(toGpuStats(rtx4090)).toEqual({
      uuid: rtx4090.uuid,
      utilizationPercent: 7,
      memoryUsedBytes: 1234 * MiB,
      memoryTotalBytes: 24_564 * MiB,
      temperatureCelsius: 41,
      powerWatts: 34.56,
    });
  });

  it('numbers nvidia-smi could not report become 0', () => {
    const [, mig] = parseQueryGpu(fixture('mig-a100.txt'));
    const [gtx] = parseQueryGpu(fixture('not-supported-power.txt'));
    if (!mig || !gtx) throw new Error('fixtures did not parse');
    expect(toGpuInfo(mig, '')).toMatchObject({ memoryTotalBytes: 40_960 * MiB, memoryFreeBytes: 0, cudaVersion: '' });
    expect(toGpuStats(mig)).toMatchObject({ utilizationPercent: 0, memoryUsedBytes: 0, memoryTotalBytes: 40_960 * MiB, temperatureCelsius: 30 });
    expect(toGpuStats(gtx).powerWatts).toBe(0);
  });

  it('every field NaN', () => {
    const blank: NvidiaGpu = {
      ...rtx4090,
      memoryTotalBytes: Number.NaN,
      memoryUsedBytes: Number.NaN,
      memoryFreeBytes: Number.NaN,
      utilizationPercent: Number.NaN,
      temperatureCelsius: Number.NaN,
      powerWatts: Number.NaN,
    };
    const info = toGpuInfo(blank, '12.4');
    const stats = toGpuStats(blank);
    expect([info.memoryTotalBytes, info.memoryFreeBytes]).toEqual([0, 0]);
    expect([stats.utilizationPercent, stats.memoryUsedBytes, stats.memoryTotalBytes, stats.temperatureCelsius, stats.powerWatts]).toEqual([0, 0, 0, 0, 0]);
  });

  it('an older driver’s GPU has no compute capability', () => {
    const [t4] = parseQueryGpu(fixture('old-driver.txt'), OLD_FIELDS);
    if (!t4) throw new Error('fixture did not parse');
    expect(toGpuInfo(t4, '11.4')).toMatchObject({ name: 'Tesla T4', computeCapability: '', cudaVersion: '11.4' });
  });
});

describe('probeNvidiaGpus against fake nvidia-smi executables', () => {
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-nvidia-smi-'));
  });

  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

  /** Writes an executable shell script whose body sees the arguments; each call is logged. */
  async function fake(name: string, body: string): Promise<{ command: string; calls: () => Promise<string[]> }> {
    const command = path.join(dir, name);
    const log = `${command}.calls`;
    await writeFile(command, `#!/bin/sh\nprintf 'call:%s\\n' "$*" >> ${quote(log)}\n${body}\n`);
    await chmod(command, 0o755);
    const calls = async (): Promise<string[]> => (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '').map((l) => l.slice('call:'.length));
    return { command, calls };
  }

  /** A fake that prints a query fixture for --query-gpu and a banner otherwise. */
  const printing = (query: string, banner: string): string =>
    [`case "$1" in`, `  --query-gpu=*) cat ${quote(fixturePath(query))} ;;`, `  *) cat ${quote(fixturePath(banner))} ;;`, `esac`].join('\n');

  it('reads the GPUs and the CUDA version', async () => {
    const { command, calls } = await fake('one-gpu', printing('one-gpu.txt', 'banner.txt'));
    expect(await probeNvidiaGpus(command)).toEqual({ ok: true, gpus: [rtx4090], cudaVersion: '12.4' });
    expect(await calls()).toEqual([`--query-gpu=${QUERY_FIELDS.join(',')} --format=csv,noheader,nounits`, '']);
  });

  it('reads several GPUs', async () => {
    const { command } = await fake('four-a100', printing('four-a100.txt', 'banner.txt'));
    const result = await probeNvidiaGpus(command);
    if (!result.ok) throw new Error(result.reason);
    expect(result.gpus.map((g) => g.name)).toEqual(Array.from({ length: 4 }, () => 'NVIDIA A100-SXM4-80GB'));
    expect(result.cudaVersion).toBe('12.4');
  });

  it('skips warnings in the output', async () => {
    const { command } = await fake('noise', printing('noise.txt', 'banner.txt'));
    const result = await probeNvidiaGpus(command);
    expect(result.ok && result.gpus.map((g) => g.index)).toEqual([0, 2]);
  });

  it('a driver that does not answer: not ok, and the reason is nvidia-smi’s own message', async () => {
    const { command, calls } = await fake(
      'no-driver',
      `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."\nexit 9`,
    );
    const result = await probeNvidiaGpus(command);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/^nvidia-smi failed: /);
    expect(result.reason).toContain("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver");
    // A failure that is not about compute_cap is not retried without it.
    expect(await calls()).toHaveLength(1);
  });

  it('a failure message on stderr is the reason too', async () => {
    const { command } = await fake('nvml-mismatch', `echo "Failed to initialize NVML: Driver/library version mismatch" >&2\nexit 18`);
    const result = await probeNvidiaGpus(command);
    expect(result).toEqual({ ok: false, reason: 'nvidia-smi failed: Failed to initialize NVML: Driver/library version mismatch' });
  });

  it('no devices: not ok, saying so', async () => {
    const { command } = await fake('no-devices', `echo "No devices were found"\nexit 6`);
    expect(await probeNvidiaGpus(command)).toEqual({ ok: false, reason: 'nvidia-smi failed: No devices were found' });
  });

  it('an older driver that does not know compute_cap: asked again without it', async () => {
    const { command, calls } = await fake(
      'old-driver',
      [
        `case "$1" in`,
        `  --query-gpu=*compute_cap*) echo 'Field "compute_cap" is not a valid field to query.'; exit 2 ;;`,
        `  --query-gpu=*) cat ${quote(fixturePath('old-driver.txt'))} ;;`,
        `  *) cat ${quote(fixturePath('banner-old-driver.txt'))} ;;`,
        `esac`,
      ].join('\n'),
    );
    const result = await probeNvidiaGpus(command);
    if (!result.ok) throw new Error(result.reason);
    expect(result.cudaVersion).toBe('11.4');
    expect(result.gpus.map((g) => [g.name, g.computeCapability, g.driverVersion])).toEqual([
      ['Tesla T4', '', '470.82.01'],
      ['Tesla T4', '', '470.82.01'],
    ]);
    expect(await calls()).toEqual([
      `--query-gpu=${QUERY_FIELDS.join(',')} --format=csv,noheader,nounits`,
      `--query-gpu=${OLD_FIELDS.join(',')} --format=csv,noheader,nounits`,
      '',
    ]);
  });

  it('the compute_cap complaint on stderr is recognised too', async () => {
    const { command } = await fake(
      'old-driver-stderr',
      [
        `case "$1" in`,
        `  --query-gpu=*compute_cap*) echo 'Field "compute_cap" is not a valid field to query.' >&2; exit 2 ;;`,
        `  --query-gpu=*) cat ${quote(fixturePath('old-driver.txt'))} ;;`,
        `  *) cat ${quote(fixturePath('banner-old-driver.txt'))} ;;`,
        `esac`,
      ].join('\n'),
    );
    const result = await probeNvidiaGpus(command);
    expect(result.ok && result.gpus).toHaveLength(2);
  });

  it('a banner that fails leaves the CUDA version empty', async () => {
    const { command } = await fake('no-banner', [`case "$1" in`, `  --query-gpu=*) cat ${quote(fixturePath('one-gpu.txt'))} ;;`, `  *) exit 1 ;;`, `esac`].join('\n'));
    expect(await probeNvidiaGpus(command)).toEqual({ ok: true, gpus: [rtx4090], cudaVersion: '' });
  });

  it('no nvidia-smi at that path: not installed', async () => {
    const result = await probeNvidiaGpus(path.join(dir, 'missing', 'nvidia-smi'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain('not installed');
  });

  it('a file that is not executable: not ok', async () => {
    const command = path.join(dir, 'not-executable');
    await writeFile(command, '#!/bin/sh\nexit 0\n');
    await chmod(command, 0o644);
    const result = await probeNvidiaGpus(command);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/^nvidia-smi failed: .*EACCES/);
  });
});
