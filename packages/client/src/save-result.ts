import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BlobClient } from './blob-client.js';
import { findBlobRefs, resultFiles } from './result-files.js';
import type { ResultView } from './views.js';

/** One file `saveResult` wrote. */
export interface SavedFile {
  /** Where it was written: the output folder joined with `fileName`. */
  readonly path: string;
  /** Its name inside the output folder. */
  readonly fileName: string;
  /** "document" for result.json and summary.txt, "blob" for a blob of the result. */
  readonly kind: 'document' | 'blob';
  /** For a blob: its SHA-256. */
  readonly sha256: string | null;
  readonly size: number;
}

export interface SaveResultOptions {
  /** Called after each file is written, result.json and summary.txt first. @default none */
  readonly onFile?: (file: SavedFile) => void;
  /** Called as a blob downloads, with its file name inside the folder. @default none */
  readonly onProgress?: (fileName: string, doneBytes: number, totalBytes: number) => void;
}

/**
 * Writes a result into `dir` (created if missing): result.json (the result document),
 * summary.txt, and every blob the result refers to, named by result-files.ts's rules.
 * Returns the files in the order written.
 */
export async function saveResultFiles(blobs: BlobClient, result: ResultView, dir: string, options: SaveResultOptions = {}): Promise<SavedFile[]> {
  await mkdir(dir, { recursive: true });
  const saved: SavedFile[] = [];
  const documents: [string, string][] = [
    ['result.json', `${JSON.stringify(result.doc, null, 2)}\n`],
    ['summary.txt', `${result.summary}\n`],
  ];
  for (const [fileName, text] of documents) {
    const target = path.join(dir, fileName);
    await writeFile(target, text);
    const file: SavedFile = { path: target, fileName, kind: 'document', sha256: null, size: Buffer.byteLength(text) };
    saved.push(file);
    options.onFile?.(file);
  }
  // Every name under which the result mentions a blob (the same bytes may be named twice),
  // then any blob the result lists but its document does not show.
  const onProgress = options.onProgress;
  for (const { sha256, fileName } of resultFiles([...findBlobRefs(result.doc), ...result.blobs])) {
    const target = path.join(dir, fileName);
    const { size } = await blobs.download(sha256, target, onProgress ? { onProgress: (done, total) => onProgress(fileName, done, total) } : {});
    const file: SavedFile = { path: target, fileName, kind: 'blob', sha256, size };
    saved.push(file);
    options.onFile?.(file);
  }
  return saved;
}
