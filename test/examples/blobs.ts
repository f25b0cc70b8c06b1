/**
 * Moving blobs (content-addressed files) to and from the coordinator, with progress.
 */
import type { MmgridClient } from '@mmgrid/client';

export async function uploadAndDownload(client: MmgridClient): Promise<void> {
  const { blob, skipped } = await client.blobs.uploadFile('talk.wav', {
    onProgress: (doneBytes, totalBytes) => console.error(`up ${doneBytes}/${totalBytes}`),
  });
  console.log(`${blob.sha256} (${blob.size} bytes)${skipped ? ', already there' : ''}`);

  await client.blobs.download(blob.sha256, 'copy-of-talk.wav', {
    onProgress: (doneBytes, totalBytes) => console.error(`down ${doneBytes}/${totalBytes}`),
  });
  const bytes = await client.blobs.downloadBytes(blob.sha256, {
    onProgress: (doneBytes, totalBytes) => console.error(`down ${doneBytes}/${totalBytes}`),
  });
  console.log(`${bytes.length} bytes in memory`);
}

/** A result's blobs one by one, instead of saveResult. */
export async function resultBlobs(client: MmgridClient, jobId: string): Promise<void> {
  const result = await client.result(jobId);
  for (const blob of result.blobs) {
    await client.blobs.download(blob.sha256, `out/${blob.sha256}`);
  }
}
