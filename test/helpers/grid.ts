import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalGrid, type LocalGridOptions } from '@mmgrid/cli';
import { MmgridClient, type ConnectionOptions } from '@mmgrid/client';

export interface TestGrid {
  readonly grid: LocalGrid;
  readonly client: MmgridClient;
  readonly dataDir: string;
  /** The environment that points `mmgrid` (runCli) at this grid's coordinator. */
  readonly cliEnv: Readonly<Record<string, string>>;
  /** The ids the worker processes persisted in their state folders. */
  workerIds(): Promise<string[]>;
  /** The process of the worker with this id. */
  workerProcess(workerId: string): Promise<ChildProcess>;
  /** A process's log ("coordinator", "worker-1"…). */
  log(name: string): Promise<string>;
  /** Stops everything and checks that every process it started has exited. */
  stop(): Promise<void>;
}

/**
 * A real grid for one test file: a private redis-server, a coordinator process and worker
 * processes, all on free ports, with logs under the data folder.
 */
export async function startTestGrid(options: Partial<LocalGridOptions> = {}, clientOptions: Omit<ConnectionOptions, 'address'> = {}): Promise<TestGrid> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-test-'));
  const grid = await LocalGrid.start({
    dataDir,
    workers: 2,
    // Short leases and heartbeats keep fault recovery quick in tests.
    coordinatorArgs: ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000'],
    // Small slot counts keep the test processes light on a 2-core machine.
    workerArgs: ['--slots', 'selftest.sleep=4'],
    ...options,
  });
  const client = new MmgridClient({ ...clientOptions, address: grid.address });
  return {
    grid,
    client,
    dataDir,
    get cliEnv() {
      return { MMGRID_COORDINATOR: grid.address };
    },
    workerIds: async () =>
      Promise.all(grid.workers.map((_, i) => readFile(path.join(dataDir, `worker-${i + 1}`, 'worker-id'), 'utf8').then((s) => s.trim()))),
    workerProcess: async (workerId: string) => {
      const ids = await Promise.all(grid.workers.map((_, i) => readFile(path.join(dataDir, `worker-${i + 1}`, 'worker-id'), 'utf8').then((s) => s.trim())));
      const index = ids.indexOf(workerId);
      const child = grid.workers[index];
      if (!child) throw new Error(`no worker process has id ${workerId}`);
      return child;
    },
    log: (name: string) => readFile(path.join(dataDir, 'logs', `${name}.log`), 'utf8'),
    stop: async () => {
      client.close();
      await grid.stop();
      const alive = [...grid.coordinators, ...grid.workers, ...(grid.redis ? [grid.redis.process] : [])].filter(
        (p) => p.exitCode === null && p.signalCode === null,
      );
      if (alive.length > 0) throw new Error(`${alive.length} grid processes were left running`);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
