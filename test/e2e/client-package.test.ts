// @mmgrid/client as another project gets it: packed with `pnpm pack` (with @mmgrid/core and
// @mmgrid/proto, which it depends on), unpacked into a project outside the repository, a
// TypeScript program compiled against the shipped .d.ts files under strict settings without
// skipLibCheck, then run with node against a real grid and against an address where nothing listens.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, realpath, stat, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@mmgrid/cli';
import { runNode, type CliResult } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const packed = ['proto', 'core', 'client'] as const;

type Run = CliResult;

interface PackedManifest {
  readonly name: string;
  readonly dependencies?: Record<string, string>;
}

/** What the program prints as its last stdout line. */
interface Summary {
  readonly jobId: string;
  readonly state: string;
  readonly events: string[];
  readonly uploaded: Record<string, [number, number]>;
  readonly summary: string;
  readonly ocrText: string;
  readonly saved: string[];
}

// The consumer's program: it imports nothing but @mmgrid/client (and node's own modules).
const program = String.raw`
import { isMmgridError, MmgridClient, type JobEventView, type ResultView, type SavedFile } from '@mmgrid/client';

function describeEvent(event: JobEventView): string {
  switch (event.type) {
    case 'job':
      return 'job:' + event.state;
    case 'task':
      return 'task:' + event.state;
    case 'progress':
      return 'progress:' + String(event.fraction);
  }
}

function ocrTextOf(result: ResultView, name: string): string {
  const input = result.doc.inputs.find((i) => i.name === name);
  const ocr: unknown = input?.outputs['image.ocr'];
  if (typeof ocr === 'object' && ocr !== null && 'text' in ocr && typeof ocr.text === 'string') return ocr.text;
  return '';
}

async function main(address: string, file: string, name: string, out: string): Promise<number> {
  const client = new MmgridClient({ address });
  try {
    const uploaded: Record<string, [number, number]> = {};
    const job = await client.submit([{ path: file }], {
      prompt: 'What does the label say?',
      onUploadProgress: (input: string, doneBytes: number, totalBytes: number) => {
        uploaded[input] = [doneBytes, totalBytes];
      },
    });
    const events: string[] = [];
    for await (const event of client.watch(job.id)) events.push(describeEvent(event));
    const result: ResultView = await client.result(job.id);
    const saved: readonly SavedFile[] = await client.saveResult(job.id, out);
    const ended = await client.getJob(job.id);
    const summary = {
      jobId: job.id,
      state: ended.state,
      events,
      uploaded,
      summary: result.summary,
      ocrText: ocrTextOf(result, name),
      saved: saved.map((f) => f.path),
    };
    process.stdout.write(JSON.stringify(summary) + '\n');
    return 0;
  } catch (err) {
    if (isMmgridError(err)) {
      process.stderr.write(err.code + ': ' + err.message + '\n');
      return 1;
    }
    throw err;
  } finally {
    client.close();
  }
}

const [address, file, name, out] = process.argv.slice(2);
if (address === undefined || file === undefined || name === undefined || out === undefined) {
  process.stderr.write('usage: main ADDRESS FILE NAME OUT\n');
  process.exitCode = 2;
} else {
  process.exitCode = await main(address, file, name, out);
}
`;

const tsconfig = {
  compilerOptions: {
    strict: true,
    skipLibCheck: false,
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    lib: ['ES2023'],
    types: ['node'],
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src'],
};

/** The folder of an installed package: its package.json's, found even where `exports` hides it. */
async function packageFolder(dep: string, from: string): Promise<string> {
  const require = createRequire(path.join(from, 'package.json'));
  try {
    return path.dirname(await realpath(require.resolve(`${dep}/package.json`)));
  } catch {
    let dir = path.dirname(await realpath(require.resolve(dep)));
    for (;;) {
      const manifest = path.join(dir, 'package.json');
      if (existsSync(manifest) && (JSON.parse(await readFile(manifest, 'utf8')) as { name?: string }).name === dep) return dir;
      const parent = path.dirname(dir);
      if (parent === dir) throw new Error(`no folder with the package.json of ${dep} above where it resolves from ${from}`);
      dir = parent;
    }
  }
}

/** Links node_modules/<name> in the project to a folder, making the scope's folder first. */
async function link(project: string, name: string, target: string): Promise<void> {
  const at = path.join(project, 'node_modules', name);
  await mkdir(path.dirname(at), { recursive: true });
  await symlink(target, at, 'dir');
}

describe('the packed @mmgrid/client in another project', () => {
  let tg: TestGrid;
  let packs: string;
  let project: string;
  let media: string;
  let compiled: Run;
  const tarballs = new Map<string, string>();

  beforeAll(async () => {
    // The grid starts while the packages are packed and the program compiled.
    const gridStarted = startTestGrid({ workers: 1 }).then((started) => (tg = started));
    try {
      await prepare();
    } finally {
      await gridStarted;
    }
  });

  async function prepare(): Promise<void> {
    packs = await tempDir('mmgrid-packs-');
    project = await tempDir('mmgrid-consumer-');
    media = await tempDir('mmgrid-consumer-media-');
    expect(path.relative(repoRoot, project).startsWith('..')).toBe(true);

    // Pack each package as it is built (the workspace's `pnpm build` ran before the tests).
    for (const name of packed) {
      const { stdout } = await run('pnpm', ['pack', '--pack-destination', packs], { cwd: path.join(repoRoot, 'packages', name) });
      const tarball = stdout.trim().split('\n').at(-1) ?? '';
      expect(tarball).toMatch(new RegExp(`mmgrid-${name}-[^/]+\\.tgz$`));
      tarballs.set(name, tarball);
    }

    // Unpack each into node_modules/@mmgrid/<name> and link its third-party dependencies to
    // where the workspace installed them (no registry here); theirs resolve from those folders.
    await writeIn(project, 'package.json', JSON.stringify({ name: 'mmgrid-consumer', private: true, type: 'module' }));
    const linked = new Map<string, string>();
    for (const name of packed) {
      const into = path.join(project, 'node_modules', '@mmgrid', name);
      await mkdir(into, { recursive: true });
      await run('tar', ['-xzf', tarballs.get(name) ?? '', '-C', into, '--strip-components=1', 'package/']);
      const text = await readFile(path.join(into, 'package.json'), 'utf8');
      if (text.includes('workspace:')) throw new Error(`the packed package.json of @mmgrid/${name} still names a workspace: dependency:\n${text}`);
      const manifest = JSON.parse(text) as PackedManifest;
      expect(manifest.name).toBe(`@mmgrid/${name}`);
      for (const dep of Object.keys(manifest.dependencies ?? {})) {
        if (dep.startsWith('@mmgrid/')) {
          expect(packed.map((p) => `@mmgrid/${p}`)).toContain(dep);
          continue;
        }
        const target = await packageFolder(dep, path.join(repoRoot, 'packages', name));
        const already = linked.get(dep);
        if (already !== undefined) {
          if (already !== target) throw new Error(`${dep} resolves to ${already} and to ${target} for different packages`);
          continue;
        }
        await link(project, dep, target);
        linked.set(dep, target);
      }
    }
    // The program's own types for node, as any TypeScript project on node has them.
    await link(project, '@types/node', await packageFolder('@types/node', repoRoot));

    await mkdir(path.join(project, 'src'));
    await writeIn(path.join(project, 'src'), 'main.ts', program);
    await writeIn(project, 'tsconfig.json', JSON.stringify(tsconfig, null, 2));
    // --listFiles: the files the compiler read, to check where the types came from.
    compiled = await runNode([path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project, '--listFiles'], { cwd: project });
  }

  afterAll(async () => {
    await tg?.stop();
    await removeDir(packs);
    await removeDir(project);
    await removeDir(media);
  });

  it('ships the built code and its types, without tests or build state', async () => {
    for (const name of packed) {
      const { stdout } = await run('tar', ['-tzf', tarballs.get(name) ?? '']);
      const files = stdout.trim().split('\n');
      expect(files).toEqual(expect.arrayContaining(['package/package.json', 'package/lib/index.js', 'package/lib/index.d.ts']));
      expect(files.filter((f) => f.includes('__tests__') || f.includes('tsbuildinfo'))).toEqual([]);
      // Source maps point at ../src, so the sources they name are there.
      for (const map of files.filter((f) => f.endsWith('.map'))) {
        const { sources } = JSON.parse(await readFile(path.join(project, 'node_modules', '@mmgrid', name, map.slice('package/'.length)), 'utf8')) as { sources: string[] };
        for (const source of sources) expect(files).toContain(path.posix.join(path.posix.dirname(map), source));
      }
    }
  });

  it('compiles a strict program against the shipped types alone and runs it against a grid', async () => {
    // tsc printed no error, and read every @mmgrid type from the unpacked copies.
    expect(compiled.stderr).toBe('');
    expect(compiled.stdout.split('\n').filter((line) => line !== '' && !path.isAbsolute(line))).toEqual([]);
    expect(compiled.code).toBe(0);
    const read = compiled.stdout.split('\n').filter((f) => f !== '');
    const unpacked = path.join(await realpath(project), 'node_modules', '@mmgrid');
    expect(read).toContain(path.join(unpacked, 'client', 'lib', 'index.d.ts'));
    expect(read).toContain(path.join(unpacked, 'core', 'lib', 'index.d.ts'));
    expect(read).toContain(path.join(unpacked, 'proto', 'lib', 'index.d.ts'));
    // Nothing from the workspace's packages, nor the shipped sources: the .d.ts files suffice.
    expect(read.filter((f) => f.startsWith(path.join(repoRoot, 'packages') + path.sep))).toEqual([]);
    expect(read.filter((f) => f.startsWith(unpacked) && !f.endsWith('.d.ts'))).toEqual([]);

    const png = await writeTextPng(media, 'label.png', ['PART 7731']);
    const out = path.join(media, 'out');
    const ran = await runNode([path.join('dist', 'main.js'), tg.grid.address, png, 'label.png', out], { cwd: project });
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const summary = JSON.parse(ran.stdout.trim().split('\n').at(-1) ?? '') as Summary;

    expect(summary.state).toBe('completed');
    expect(summary.events[0]).toBe('job:queued');
    expect(summary.events.at(-1)).toBe('job:completed');
    expect(summary.ocrText).toMatch(/PART 7731/);
    expect(summary.summary).toContain('label.png');
    const size = (await stat(png)).size;
    expect(summary.uploaded['label.png']).toEqual([size, size]);

    expect(summary.saved).toEqual(expect.arrayContaining([path.join(out, 'result.json'), path.join(out, 'summary.txt')]));
    expect((await readdir(out)).sort()).toEqual(summary.saved.map((f) => path.basename(f)).sort());
    for (const file of summary.saved) expect((await stat(file)).size).toBeGreaterThan(0);
    expect((await tg.client.getJob(summary.jobId)).state).toBe('completed');
  });

  it('exits non-zero with UNAVAILABLE when no coordinator listens at the address', async () => {
    const port = await freePort();
    const png = path.join(media, 'label.png');
    const ran = await runNode([path.join('dist', 'main.js'), `127.0.0.1:${port}`, png, 'label.png', path.join(media, 'never')], { cwd: project });
    expect(ran.code).not.toBe(0);
    expect(ran.stderr).toMatch(new RegExp(`^UNAVAILABLE: cannot reach coordinator at 127\\.0\\.0\\.1:${port}`, 'm'));
    expect(ran.stdout).toBe('');
  });
});
