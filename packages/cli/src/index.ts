/**
 * @mmgrid/cli — the `mmgrid` command, and the local-grid helpers it uses (a private
 * redis-server, a coordinator and worker processes) for `mmgrid dev`, `mmgrid demo` and tests.
 * The client library is @mmgrid/client.
 *
 * @example
 * ```ts
 * import { LocalGrid } from '@mmgrid/cli';
 *
 * const grid = await LocalGrid.start({ dataDir: '/tmp/grid', workers: 2 });
 * console.log(`coordinator at ${grid.address}`);
 * await grid.stop();
 * ```
 */
export { demoAssets, DEMO_PROMPT } from './commands/grid.js';
export { CliError } from './errors.js';
export { ExitCode, exitCodeFor } from './exit-codes.js';
export type { ExitCodeValue } from './exit-codes.js';
export { binOf, LocalGrid, stopChild } from './local-grid.js';
export type { LocalGridOptions } from './local-grid.js';
export { freePort, REDIS_INSTALL_HINT, startRedisServer } from './local-redis.js';
export type { LocalRedis, LocalRedisOptions } from './local-redis.js';
