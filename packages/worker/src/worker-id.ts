import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The worker's stable id, created once and kept in its state folder. */
export async function loadWorkerId(stateDir: string): Promise<string> {
  const file = path.join(stateDir, 'worker-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[A-Za-z0-9_.:-]{1,128}$/.test(id)) return id;
  } catch {
    // first start
  }
  const id = `w-${randomBytes(8).toString('hex')}`;
  await mkdir(stateDir, { recursive: true });
  await writeFile(file, `${id}\n`);
  return id;
}
