// `pnpm bench --smoke`: every benchmark at a tiny size, so none of them rots between the runs
// people make by hand. The figures of a smoke run mean nothing and no target is checked here
// (tests never assert on time); what is checked is that each benchmark runs to the end and
// reports what bench/results/latest.json promises: its method, baseline, table and targets.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCHMARKS } from '../bench/suite.js';
import { removeDir, tempDir } from '../helpers/files.js';

const run = promisify(execFile);
const testDir = path.resolve(import.meta.dirname, '..');

interface Report {
  scale: string;
  machine: { cpu: string; cores: number };
  versions: Record<string, string>;
  benchmarks: Record<string, { title: string; method: string; baseline: string; table: { columns: string[]; rows: unknown[][] }; targets: { what: string; value: number; met: boolean }[]; figures: Record<string, unknown> }>;
}

describe('pnpm bench --smoke', () => {
  let dir: string;
  let report: Report;
  let stdout: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-bench-smoke-');
    const out = path.join(dir, 'latest.json');
    ({ stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--out', out], { cwd: testDir, maxBuffer: 16 * 1024 * 1024 }));
    report = JSON.parse(await readFile(out, 'utf8')) as Report;
  }, 600_000);

  afterAll(async () => {
    await removeDir(dir);
  });

  it('runs every benchmark and reports each one', () => {
    expect(report.scale).toBe('smoke');
    expect(Object.keys(report.benchmarks)).toEqual(BENCHMARKS.map((b) => b.name));
    for (const [name, b] of Object.entries(report.benchmarks)) {
      expect(b.method, name).not.toBe('');
      expect(b.baseline, name).not.toBe('');
      expect(b.table.rows.length, name).toBeGreaterThan(0);
      for (const row of b.table.rows) expect(row.length, name).toBe(b.table.columns.length);
      expect(b.targets.length, name).toBeGreaterThan(0);
      for (const t of b.targets) expect(Number.isFinite(t.value), `${name}: ${t.what}`).toBe(true);
      expect(Object.keys(b.figures).length, name).toBeGreaterThan(0);
    }
  });

  it('names the machine and the versions it ran on', () => {
    expect(report.machine.cores).toBeGreaterThan(0);
    for (const pkg of ['node', 'redis', 'bullmq', 'ioredis', '@grpc/grpc-js']) expect(report.versions[pkg], pkg).toMatch(/^\d+\.\d+/);
  });

  it('prints a table per benchmark and says the targets were not checked', () => {
    for (const b of BENCHMARKS) expect(stdout).toContain(`[${b.name}]`);
    expect(stdout).toContain('smoke run: the figures are too small to mean anything, targets not checked');
  });

  it('refuses a benchmark it does not have, listing those it has', async () => {
    const failed = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'no-such-bench'], { cwd: testDir }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain('no benchmark is called "no-such-bench"');
    expect(failed?.stderr).toContain(`benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}`);
  });
});
