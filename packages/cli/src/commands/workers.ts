import type { CommandContext } from '../context.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { formatWorkers } from '../fleet-format.js';

/** `mmgrid workers`: the connected fleet (admin), with trust scores under result verification. */
export async function listWorkers(ctx: CommandContext): Promise<ExitCodeValue> {
  const { workers } = await ctx.connect().listWorkers();
  if (ctx.json) ctx.printJson(workers);
  else ctx.print(formatWorkers(workers, Date.now()));
  return ExitCode.OK;
}

/** `mmgrid workers release <id>`: lifts a worker's quarantine. */
export async function releaseWorker(ctx: CommandContext, workerId: string): Promise<ExitCodeValue> {
  const { wasQuarantined } = await ctx.connect().releaseWorker(workerId);
  if (ctx.json) ctx.printJson({ workerId, wasQuarantined });
  else ctx.print(wasQuarantined ? `released worker ${workerId}: it gets tasks again, with a fresh trust record` : `worker ${workerId} was not quarantined; its trust record was cleared`);
  return ExitCode.OK;
}
