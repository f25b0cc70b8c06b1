/**
 * Listing, cancelling and retrying jobs, and stopping a wait.
 */
import type { MmgridClient } from '@mmgrid/client';

export async function listFailed(client: MmgridClient): Promise<void> {
  let pageToken = '';
  do {
    const page = await client.list({ states: ['failed'], pageSize: 50, pageToken });
    for (const job of page.jobs) console.log(job.id, job.error?.message);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
}

export async function cancelAndRetry(client: MmgridClient, jobId: string): Promise<void> {
  const cancelled = await client.cancel(jobId, 'wrong prompt');
  console.log(cancelled.state); // "cancelled"

  // Runs the failed (or cancelled) tasks of an ended job again.
  const retried = await client.retry(jobId);
  console.log(retried.state, retried.generation);
}

/** Follows a job for at most `ms`, then stops following (the job goes on). */
export async function watchFor(client: MmgridClient, jobId: string, ms: number): Promise<void> {
  for await (const event of client.watch(jobId, { signal: AbortSignal.timeout(ms) })) {
    console.log(event.type, event.at);
  }
}

/** Waits until the job ends or the user presses Ctrl-C. */
export async function waitUnlessInterrupted(client: MmgridClient, jobId: string): Promise<void> {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const job = await client.waitForJob(jobId, { signal: controller.signal });
  console.log(job.state);
}
