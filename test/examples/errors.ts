/**
 * Handling the client's errors by their code.
 */
import { isMmgridError, type MmgridClient, type ResultView } from '@mmgrid/client';

/** The result if the job has one; undefined while it runs; throws when it failed. */
export async function resultIfReady(client: MmgridClient, jobId: string): Promise<ResultView | undefined> {
  try {
    return await client.result(jobId);
  } catch (err) {
    if (isMmgridError(err, 'NOT_READY')) return undefined;
    if (isMmgridError(err, 'JOB_FAILED')) console.error(`job failed: ${err.job?.error?.message}`);
    throw err;
  }
}

/** Submits, waiting as long as the coordinator asks when a rate limit refuses it. */
export async function submitPolitely(client: MmgridClient, file: string): Promise<string> {
  for (;;) {
    try {
      return (await client.submit([{ path: file }])).id;
    } catch (err) {
      if (!isMmgridError(err, 'RESOURCE_EXHAUSTED') || err.retryAfterMs === undefined) throw err;
      console.error(`${err.limit}: trying again in ${err.retryAfterMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs));
    }
  }
}
