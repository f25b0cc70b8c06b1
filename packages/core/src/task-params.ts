import { z } from 'zod';
import { EXEC_KIND_PATTERN } from './task-kinds.js';

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
  'text.generate': z
    .object({
      instruction: z.string().min(1).max(20_000).optional(),
      system: z.string().max(20_000).optional(),
      maxTokens: z.number().int().min(1).max(32_768).optional(),
      temperature: z.number().min(0).max(2).optional(),
      model: z.string().max(256).optional(),
    })
    .strict(),
  'image.caption': z
    .object({
      question: z.string().min(1).max(20_000).optional(),
      maxTokens: z.number().int().min(1).max(32_768).optional(),
      temperature: z.number().min(0).max(2).optional(),
      model: z.string().max(256).optional(),
    })
    .strict(),
  'image.classify': z.object({ top: z.number().int().min(1).max(100).optional(), model: z.string().max(256).optional() }).strict(),
  'fusion.llm': z
    .object({ maxTokens: z.number().int().min(1).max(32_768).optional(), temperature: z.number().min(0).max(2).optional(), model: z.string().max(256).optional() })
    .strict(),
};

/** Parameters of owner-defined exec kinds: names a command template can use, plain values only. */
const execParams = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'parameter names are letters, digits and "_"'), z.union([z.string().max(10_000), z.number(), z.boolean()]));

/** Checks a step's parameters; returns "" when fine, or what is wrong (naming the parameter). */
export function checkTaskParams(kind: string, params: unknown): string {
  const schema = schemas[kind] ?? (EXEC_KIND_PATTERN.test(kind) ? execParams : undefined);
  if (!schema) return '';
  const parsed = schema.safeParse(params);
  if (parsed.success) return '';
  const issue = parsed.error.issues[0];
  if (!issue) return 'are not valid';
  if (issue.code === 'unrecognized_keys') return `has no parameter ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}
