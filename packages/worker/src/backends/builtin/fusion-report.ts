import { z } from 'zod';
import { buildFusionReport, type FusionParams, type FusionReportOutput } from '@mmgrid/core';
import { TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';

const paramsSchema = z.object({
  prompt: z.string(),
  inputs: z.array(z.object({ name: z.string(), modality: z.enum(['image', 'audio', 'video', 'text']) })),
});

/** `fusion.report`: the deterministic report over every modality's output and the prompt. */
export class FusionReportHandler implements TaskHandler {
  readonly kind = 'fusion.report';
  readonly description = 'deterministic report over all modality outputs and the prompt';

  run(ctx: TaskContext): Promise<FusionReportOutput> {
    const parsed = paramsSchema.safeParse(ctx.params);
    if (!parsed.success) throw new TaskFailedError('INVALID_PARAMS', `fusion.report parameters are malformed: ${parsed.error.issues[0]?.message ?? ''}`, false);
    const params: FusionParams = parsed.data;
    if (ctx.upstream.every((u) => u.error)) {
      const reasons = ctx.upstream.map((u) => `${u.kind}: ${u.error?.message ?? 'failed'}`).join('; ');
      throw new TaskFailedError('UPSTREAM_FAILED', `every input task failed, so there is nothing to fuse (${reasons})`, false);
    }
    return Promise.resolve(
      buildFusionReport(
        params,
        ctx.upstream.map((u) => ({
          taskId: u.taskId,
          kind: u.kind,
          inputNames: u.inputNames,
          outputJson: u.error ? undefined : u.outputJson,
          error: u.error ? { code: u.error.code, message: u.error.message } : undefined,
        })),
      ),
    );
  }
}
