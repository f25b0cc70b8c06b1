import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A new, empty folder under the system's temporary folder, for a test's media, job files and configs. */
export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Deletes a folder and everything in it; nothing if it was never made (its beforeAll failed first). */
export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** Writes a file (a job file, a worker config) into `dir` and returns its path. */
export async function writeIn(dir: string, name: string, contents: string | Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, contents);
  return file;
}
