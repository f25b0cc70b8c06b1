import { z } from 'zod';

/**
 * Parameters each declarable kind takes, checked at the edge for declared pipelines (workers
 * check them again). Unknown parameter names are refused.
 */
const schemas: Readonly<Record<string, z.ZodType>> = {
  'image.ocr': z.object({ language: z.literal('eng').optional() }).strict(),
  'image.inspect': z
    .object({ thumbnailMaxPx: z.number().int().min(16).max(4096).optional(), colours: z.number().int().min(1).max(32).optional() })
    .strict(),
  'audio.analyze': z.object({ frameMs: z.number().min(5).max(200).optional() }).strict(),
  // `source`, `start` and `end` are set by the planner and the text stitcher (a shard's span
  // of the input, in UTF-16 code units); a declared step takes none of them.
  'text.stats': z.object({}).strict(),
  'fusion.report': z.object({}).strict(),
  'selftest.sleep': z
    .object({ ms: z.number().int().min(0).max(600_000).optional(), failAttempts: z.number().int().min(0).max(100).optional() })
    .strict(),
  'audio.transcribe': z.object({ language: z.string().max(16).optional(), model: z.string().max(128).optional() }).strict(),
};

/** Checks a step's parameters; returns "" when fine, or what is wrong (naming the parameter). */
export function checkTaskParams(kind: string, params: unknown): string {
  const schema = schemas[kind];
  if (!schema) return '';
  const parsed = schema.safeParse(params);
  if (parsed.success) return '';
  const issue = parsed.error.issues[0];
  if (!issue) return 'are not valid';
  if (issue.code === 'unrecognized_keys') return `has no parameter ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}
