import { z } from 'zod';

/**
 * Bytes per BlobService message, both ways. Measured, not guessed: `pnpm bench` uploads and
 * downloads through a real BlobService at 16 KiB to 1 MiB; see docs/benchmarks.md.
 */
export const BLOB_CHUNK_BYTES = 256 * 1024;

/** Lower-case hex SHA-256. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export const blobRefSchema = z.object({
  sha256: z.string().regex(SHA256_PATTERN, 'must be 64 lower-case hex characters (a SHA-256)'),
  size: z.number().int().nonnegative(),
  mediaType: z.string().max(255),
  name: z.string().max(1024),
});

/** A content-addressed reference to bytes in the blob store. */
export type BlobRef = z.infer<typeof blobRefSchema>;

export function isSha256(value: string): boolean {
  return SHA256_PATTERN.test(value);
}
