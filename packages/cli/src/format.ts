import type { ExplanationView, JobEventView, JobView, TaskView, TokenView } from '@mmgrid/client';
import { describeRequirements, type PipelineInfo } from '@mmgrid/core';
import { table, when } from './table.js';

/** Human-readable output. Machine-readable output is the JSON views themselves (--json). */

function duration(task: TaskView): string {
  if (!task.startedAt) return '';
  const end = task.finishedAt ? Date.parse(task.finishedAt) : Date.now();
  return `${((end - Date.parse(task.startedAt)) / 1000).toFixed(1)}s`;
}

export function formatStatus(job: JobView): string {
  const lines = [
    `job       ${job.id}`,
    `state     ${job.state}${job.error ? ` (${job.error.message})` : ''}`,
    `pipeline  ${job.pipeline}`,
    `created   ${when(job.createdAt)}`,
    `finished  ${when(job.finishedAt)}`,
  ];
  if (job.inputs.length > 0) {
    lines.push('', 'inputs');
    lines.push(table(job.inputs.map((i) => [`  ${i.name}`, i.modality ?? '?', i.mediaType ?? '', i.size === null ? '' : `${i.size} bytes`])));
  }
  lines.push('', 'tasks');
  lines.push(
    table([
      ['  TASK', 'KIND', 'INPUT', 'STATE', 'TRIES', 'WORKER', 'TIME', 'NOTE'],
      ...job.tasks.map((t) => [
        `  ${t.id}`,
        t.kind,
        t.inputs.join(',') || '-',
        t.state,
        String(t.attempts),
        t.workerName ?? t.worker ?? '-',
        duration(t),
        t.error ? `${t.error.code}: ${t.error.message}` : '',
      ]),
    ]),
  );
  return lines.join('\n');
}

export function formatResult(job: JobView): string {
  if (!job.result) return `job ${job.id} is ${job.state}${job.error ? `: ${job.error.message}` : ''}`;
  const { result } = job;
  const lines: string[] = [];
  lines.push(`job ${job.id} ${job.state}${result.partial ? ` (partial: ${Math.round(result.coverage * 100)}% coverage)` : ''}`, '');
  lines.push(result.summary || '(no summary)');
  for (const input of result.doc.inputs) {
    lines.push('', `${input.name} (${input.modality}, ${input.mediaType})`);
    for (const [kind, output] of Object.entries(input.outputs)) {
      lines.push(`  ${kind}: ${describeOutput(output)}`);
    }
  }
  if (result.doc.failures.length > 0) {
    lines.push('', 'missing');
    for (const f of result.doc.failures) lines.push(`  ${f.kind}${f.input ? ` of ${f.input}` : ''}: ${f.code}: ${f.message}`);
  }
  if (result.blobs.length > 0) {
    lines.push('', 'blobs (save with: mmgrid result ' + job.id + ' -o DIR)');
    for (const b of result.blobs) lines.push(`  ${b.name}  ${b.mediaType}  ${b.size} bytes  ${b.sha256.slice(0, 12)}`);
  }
  return lines.join('\n');
}

function describeOutput(output: unknown): string {
  if (output === null || typeof output !== 'object') return JSON.stringify(output);
  const o = output as Record<string, unknown>;
  if (typeof o['text'] === 'string') return `text ${JSON.stringify(o['text'])}`;
  if (typeof o['durationSec'] === 'number') {
    return `${o['durationSec'].toFixed(2)} s, ${String(o['sampleRate'])} Hz, ${String(o['channels'])} ch, speech ${String(o['speechSec'])} s`;
  }
  if (typeof o['width'] === 'number') return `${String(o['width'])}×${String(o['height'])} ${String(o['format'])}`;
  if (typeof o['words'] === 'number') return `${String(o['words'])} words, ${String(o['sentences'])} sentences`;
  return JSON.stringify(output).slice(0, 120);
}

export function formatEvent(event: JobEventView): string {
  const time = event.at.slice(11, 23);
  switch (event.type) {
    case 'job':
      return `${time}  job ${event.state}${event.error ? `: ${event.error.message}` : ''}`;
    case 'task': {
      const where = event.workerName || event.worker ? ` on ${event.workerName ?? event.worker ?? ''}` : '';
      const attempt = event.attempt > 1 ? ` (attempt ${event.attempt})` : '';
      return `${time}  ${event.taskId} ${event.kind} ${event.state}${where}${attempt}${event.error ? `: ${event.error.message}` : ''}`;
    }
    case 'progress':
      return `${time}  ${event.taskId} ${Math.round(event.fraction * 100)}%${event.message ? ` ${event.message}` : ''}`;
  }
}

export function formatExplanation(tasks: readonly ExplanationView[]): string {
  return table([
    ['TASK', 'KIND', 'STATE', 'NEEDS', 'CAPABLE', 'WHY'],
    ...tasks.map((t) => {
      const needs = describeRequirements({
        model: t.requirements.model ?? '',
        minVramBytes: t.requirements.minVramBytes,
        minComputeCapability: t.requirements.minComputeCapability ?? '',
        cpuAllowed: t.requirements.cpuAllowed,
      });
      return [t.taskId, t.kind, t.state, needs || '-', `${t.freeCapableWorkers}/${t.capableWorkers}`, t.reason];
    }),
  ]);
}

export function formatPipelines(pipelines: readonly PipelineInfo[]): string {
  const out: string[] = [];
  for (const p of pipelines) {
    out.push(`${p.name}: ${p.description}`);
    if (p.modalities.length > 0) out.push(`  takes: ${p.modalities.join(', ')}`);
    out.push('  steps:');
    for (const step of p.steps) out.push(`    ${step}`);
    if (p.params.length > 0) {
      out.push('  parameters (--param NAME=VALUE):');
      for (const param of p.params) out.push(`    ${param.name}  ${param.description} (default: ${param.default === '' ? 'none' : param.default})`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

export function formatTokens(tokens: readonly TokenView[]): string {
  if (tokens.length === 0) return 'no tokens (create one with: mmgrid token create --role worker|submitter|admin)';
  return table([
    ['ID', 'ROLE', 'TENANT', 'CREATED', 'EXPIRES', 'STATE', 'NAME'],
    ...tokens.map((t) => [
      t.id,
      t.role,
      t.tenant ?? '-',
      when(t.createdAt),
      t.expiresAt === null ? 'never' : when(t.expiresAt),
      t.revokedAt !== null ? `revoked ${when(t.revokedAt)}` : t.expiresAt !== null && Date.parse(t.expiresAt) <= Date.now() ? 'expired' : 'active',
      t.name || '-',
    ]),
  ]);
}
