// packages/client/README.md shows excerpts of the programs in test/examples (which the build
// type-checks and client-example.test.ts runs): each of its TypeScript blocks must be found,
// line for line, in one of them, so the README cannot drift from code that compiles.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Lines without their indentation, blank lines left out (a snippet is shown dedented). */
function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function contains(haystack: readonly string[], needle: readonly string[]): boolean {
  for (let at = 0; at + needle.length <= haystack.length; at++) {
    if (needle.every((line, i) => haystack[at + i] === line)) return true;
  }
  return false;
}

describe('packages/client/README.md', () => {
  it('shows only code that is in the example programs', async () => {
    const readme = await readFile(path.join(root, 'packages', 'client', 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    expect(blocks.length).toBeGreaterThan(8);
    const dir = path.join(root, 'test', 'examples');
    const examples = await Promise.all(
      (await readdir(dir)).filter((f) => f.endsWith('.ts')).map(async (f) => ({ file: f, lines: lines(await readFile(path.join(dir, f), 'utf8')) })),
    );
    for (const block of blocks) {
      const found = examples.filter((e) => contains(e.lines, lines(block))).map((e) => e.file);
      expect(found, `README block not found in test/examples:\n${block}`).not.toEqual([]);
    }
  });

  it('links only to files that exist', async () => {
    const dir = path.join(root, 'packages', 'client');
    const readme = await readFile(path.join(dir, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\((\.[^)#]+)(#[^)]*)?\)/g)].map((m) => m[1] ?? '');
    expect(targets.length).toBeGreaterThan(3);
    for (const target of targets) await expect(readFile(path.join(dir, target)).catch((e: NodeJS.ErrnoException) => e.code)).resolves.not.toBe('ENOENT');
  });
});
