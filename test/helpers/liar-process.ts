import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Starts a Byzantine worker process (liar-worker.ts, with `args` as its command line); resolves
 * once the coordinator welcomed it, rejects if it exits before.
 */
export async function startLiarProcess(args: readonly string[]): Promise<ChildProcess> {
  const child = fork(path.join(here, 'liar-worker.ts'), [...args], {
    execArgv: ['--import', 'tsx'],
    // tsx is a dependency of the test package: resolved from there.
    cwd: path.join(here, '..'),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the liar worker exited (${code}) before it connected`)));
  });
  return child;
}
