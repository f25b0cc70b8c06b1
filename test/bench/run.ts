/**
 * `pnpm bench [NAME…] [--full | --smoke] [--out FILE]`: mmgrid's benchmarks. Each measures
 * mmgrid and a baseline in the same run, prints a table with the ratios, and checks its
 * targets on them; the run writes every figure, baseline and target, with the machine and the
 * versions it ran on, to bench/results/latest.json, and exits 1 when a target is missed.
 * NAME picks benchmarks by name (`pnpm bench throughput latency`). See docs/benchmarks.md.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Benchmark, BenchResult, Scale } from './harness.js';
import { fmt, secondsSince } from './harness.js';
import { BENCHMARKS } from './suite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function usage(message: string): never {
  process.stderr.write(`pnpm bench: ${message}\nusage: pnpm bench [NAME…] [--full | --smoke] [--out FILE]\nbenchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}\n`);
  process.exit(2);
}

let scale: Scale = 'default';
let out = path.join(root, 'bench/results/latest.json');
const names: string[] = [];
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i] ?? '';
  if (a === '--full') scale = 'full';
  else if (a === '--smoke') scale = 'smoke';
  else if (a === '--out') out = path.resolve(args[++i] ?? usage('--out needs a file'));
  else if (a === '--help' || a === '-h') usage('runs the benchmarks');
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else names.push(a);
}
for (const n of names) if (!BENCHMARKS.some((b) => b.name === n)) usage(`no benchmark is called "${n}"`);
const selected: Benchmark[] = names.length > 0 ? BENCHMARKS.filter((b) => names.includes(b.name)) : [...BENCHMARKS];

const run = promisify(execFile);
const require = createRequire(path.join(root, 'packages/coordinator/package.json'));
async function versionOf(pkg: string): Promise<string> {
  try {
    const file = require.resolve(`${pkg}/package.json`);
    return (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
async function redisVersion(): Promise<string> {
  const { stdout } = await run('redis-server', ['--version']).catch(() => ({ stdout: '' }));
  return /v=(\S+)/.exec(stdout)?.[1] ?? 'unknown';
}

function printTable(result: BenchResult): void {
  const cells = [result.table.columns.map(String), ...result.table.rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = result.table.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const [n, row] of cells.entries()) {
    process.stdout.write(`  ${row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}\n`);
    if (n === 0) process.stdout.write(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  }
}

const cpus = os.cpus();
const report = {
  startedAt: new Date().toISOString(),
  scale,
  machine: { cpu: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.type()} ${os.release()}`, arch: os.arch() },
  versions: {
    node: process.versions.node,
    redis: await redisVersion(),
    bullmq: await versionOf('bullmq'),
    ioredis: await versionOf('ioredis'),
    '@grpc/grpc-js': await versionOf('@grpc/grpc-js'),
    'prom-client': await versionOf('prom-client'),
  },
  benchmarks: {} as Record<string, BenchResult & { title: string; seconds: number }>,
};

process.stdout.write(`mmgrid benchmarks (${scale}) on ${report.machine.cpu}, ${report.machine.cores} cores, Node ${report.versions.node}, Redis ${report.versions.redis}\n`);
let missed = 0;
for (const bench of selected) {
  process.stdout.write(`\n${bench.title} [${bench.name}]\n`);
  const started = performance.now();
  const result = await bench.run({ scale, log: (line) => process.stdout.write(`  · ${line}\n`) });
  const seconds = secondsSince(started);
  process.stdout.write(`  ${result.method}\n  baseline: ${result.baseline}\n`);
  printTable(result);
  for (const t of result.targets) {
    const status = scale === 'smoke' ? 'SMOKE' : t.met ? 'PASS' : 'MISS';
    if (scale !== 'smoke' && !t.met) missed += 1;
    process.stdout.write(`  ${status} ${t.what}: ${fmt(t.value)}${t.unit} (target ${t.op} ${fmt(t.limit)}${t.unit})\n`);
  }
  for (const note of result.notes ?? []) process.stdout.write(`  note: ${note}\n`);
  process.stdout.write(`  (${seconds.toFixed(0)} s)\n`);
  report.benchmarks[bench.name] = { title: bench.title, seconds, ...result };
}

await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`\nwrote ${path.relative(process.cwd(), out)}\n`);
if (scale === 'smoke') process.stdout.write('smoke run: the figures are too small to mean anything, targets not checked\n');
else process.stdout.write(missed === 0 ? 'all targets met\n' : `${missed} target(s) missed\n`);
process.exit(missed === 0 ? 0 : 1);
