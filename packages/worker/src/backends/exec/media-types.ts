import path from 'node:path';
import { fileTypeFromBuffer } from 'file-type';

/**
 * Extensions of the media types a command most often reads or writes. file-type recognises
 * binary formats from their bytes; text formats (JSON, CSV, VTT…) have no signature, so for
 * those the file's extension is all there is.
 */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.svg': 'image/svg+xml',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  '.m4a': 'audio/mp4',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.vtt': 'text/vtt',
  '.srt': 'application/x-subrip',
  '.html': 'text/html',
  '.json': 'application/json',
  '.jsonl': 'application/jsonl',
  '.pdf': 'application/pdf',
  '.npy': 'application/x-npy',
  '.safetensors': 'application/octet-stream',
};

/** The usual extension of each media type (the first one listed above). */
const EXTENSION_OF = new Map<string, string>();
for (const [ext, type] of Object.entries(BY_EXTENSION)) if (!EXTENSION_OF.has(type)) EXTENSION_OF.set(type, ext);
EXTENSION_OF.delete('application/octet-stream');

/** `.png` for image/png, "" for a type with no usual extension. Parameters (`; charset=…`) are ignored. */
export function extensionOf(mediaType: string): string {
  return EXTENSION_OF.get(mediaType.split(';')[0]?.trim().toLowerCase() ?? '') ?? '';
}

/** A file's media type: from its bytes (file-type), else from its extension, else application/octet-stream. */
export async function mediaTypeOf(bytes: Uint8Array, name: string): Promise<string> {
  const sniffed = await fileTypeFromBuffer(bytes);
  if (sniffed) return sniffed.mime;
  return BY_EXTENSION[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}
