import path from 'node:path';
import { blobRefSchema, type BlobRef } from '@mmgrid/core';

/** The files `saveResult` (and `mmgrid result -o DIR`) writes besides the blobs; a blob never takes their names. */
export const RESULT_DOC_FILES: readonly string[] = ['result.json', 'summary.txt'];

/** Longest name kept (ASCII once made safe): with a suffix it stays under the usual 255 bytes. */
const MAX_NAME = 180;

/** One blob file to write: the blob's bytes under `fileName`, directly inside the output folder. */
export interface ResultFile {
  readonly sha256: string;
  readonly fileName: string;
}

/**
 * Every blob reference in a result document (`{ sha256, size, mediaType, name }` anywhere in
 * it), in document order, repeats included.
 */
export function findBlobRefs(value: unknown, into: BlobRef[] = []): BlobRef[] {
  if (Array.isArray(value)) {
    for (const v of value) findBlobRefs(v, into);
    return into;
  }
  if (value === null || typeof value !== 'object') return into;
  const record = value as Record<string, unknown>;
  if (typeof record['sha256'] === 'string') {
    const ref = blobRefSchema.safeParse(record);
    if (ref.success) into.push(ref.data);
  }
  for (const v of Object.values(record)) findBlobRefs(v, into);
  return into;
}

/**
 * A blob's name as a file name inside the output folder: its last path element only, with
 * anything but letters, digits, "_", "." and "-" replaced by "_". A name that is empty, "."
 * or ".." becomes the blob's SHA-256.
 */
export function safeFileName(name: string, sha256: string): string {
  const base = path.posix.basename(name.replace(/\\/g, '/')).replace(/[^\w.-]+/g, '_');
  if (base === '' || /^\.+$/.test(base)) return sha256;
  if (base.length <= MAX_NAME) return base;
  const ext = path.extname(base);
  const keep = ext.length <= 16 ? ext : '';
  return `${base.slice(0, MAX_NAME - keep.length)}${keep}`;
}

/** "clip.frames.vtt" + "3fa2b1c0" → "clip.frames.3fa2b1c0.vtt"; "notes" → "notes.3fa2b1c0". */
function withSuffix(fileName: string, suffix: string): string {
  const ext = path.extname(fileName);
  return `${fileName.slice(0, fileName.length - ext.length)}.${suffix}${ext}`;
}

/**
 * The files to write for a result's blob references: one per distinct (blob, name), so two
 * references to the same bytes under different names give two files. When a different blob
 * already took a name (or the name is result.json or summary.txt), the later blob's file
 * gets the first 8 hex characters of its SHA-256 before the extension
 * ("clip.frames.3fa2b1c0.vtt"). Names are compared ignoring case, so no file overwrites
 * another on a case-insensitive file system either. Pure: same references, same files.
 */
export function resultFiles(refs: readonly Pick<BlobRef, 'sha256' | 'name'>[], reserved: readonly string[] = RESULT_DOC_FILES): ResultFile[] {
  /** File name (lower case) → the blob written under it ('' for the result's own files). */
  const taken = new Map<string, string>(reserved.map((n) => [n.toLowerCase(), '']));
  const written = new Set<string>();
  const files: ResultFile[] = [];
  for (const ref of refs) {
    const wanted = safeFileName(ref.name, ref.sha256);
    const candidates = [wanted, withSuffix(wanted, ref.sha256.slice(0, 8)), withSuffix(wanted, ref.sha256)];
    let fileName: string | undefined;
    for (const candidate of candidates) {
      const owner = taken.get(candidate.toLowerCase());
      if (owner === undefined || owner === ref.sha256) {
        fileName = candidate;
        break;
      }
    }
    // Every candidate taken by other blobs (names written to collide): count up.
    for (let n = 2; fileName === undefined; n += 1) {
      const candidate = withSuffix(wanted, `${ref.sha256}-${n}`);
      if (!taken.has(candidate.toLowerCase())) fileName = candidate;
    }
    if (written.has(fileName)) continue;
    written.add(fileName);
    taken.set(fileName.toLowerCase(), ref.sha256);
    files.push({ sha256: ref.sha256, fileName });
  }
  return files;
}
