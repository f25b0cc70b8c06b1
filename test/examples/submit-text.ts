/**
 * Submitting inline text and a pipeline's parameters, and waiting for the job.
 */
import type { JobView, MmgridClient } from '@mmgrid/client';

export async function summarizeNotes(client: MmgridClient, notes: string): Promise<JobView> {
  const job = await client.submit([{ text: notes, name: 'notes.txt' }, { path: 'photo.png' }], {
    prompt: 'What do the notes say about the photo?',
    labels: { project: 'demo' },
  });
  return client.waitForJob(job.id, {
    onEvent: (event) => console.error(event.type, event.id),
  });
}

/** A built-in pipeline with parameters (see `mmgrid pipelines`). */
export async function selftest(client: MmgridClient): Promise<JobView> {
  const job = await client.submit([], { pipeline: 'selftest', params: { tasks: '4', taskMs: '200' } });
  return client.waitForJob(job.id);
}
