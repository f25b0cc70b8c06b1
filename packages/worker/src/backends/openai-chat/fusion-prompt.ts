import type { FusionReportOutput } from '@mmgrid/core';
import type { ChatMessage } from './chat-client.js';

const SYSTEM = [
  'You answer questions about a set of inputs (images, recordings, texts) from what automatic analysis tools found in them.',
  'Use only the findings you are given; do not guess at what the tools could not see.',
  'When the findings do not answer the question, say so plainly, and say what is missing.',
].join(' ');

/**
 * The messages that ask a language model to answer a fusion report's prompt from its
 * findings: each input's section (its modality and the lines its tools wrote), the prompt's
 * terms found in the inputs, and what is missing (failed steps). With no prompt, it is asked
 * to summarise what the inputs contain.
 */
export function fusionMessages(report: FusionReportOutput): ChatMessage[] {
  const prompt = report.prompt.trim();
  const lines: string[] = [prompt === '' ? 'Task: summarise what the inputs contain.' : `Question: ${prompt}`, '', 'Findings:'];
  for (const section of report.sections) {
    lines.push(`- ${section.input} (${section.modality}):`);
    for (const line of section.lines) lines.push(`  - ${line.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (report.sections.length === 0) lines.push('- (none)');
  if (report.matchedTerms.length > 0) {
    lines.push('', `Words of the question found in the inputs: ${report.matchedTerms.map((m) => `"${m.term}" in ${m.foundIn.join(', ')}`).join('; ')}.`);
  }
  if (report.missing.length > 0) {
    lines.push('', `Missing (${Math.round(report.coverage * 100)}% of the analyses succeeded):`);
    for (const m of report.missing) lines.push(`- ${m.kind} of ${m.input}: ${m.reason}`);
  }
  lines.push(
    '',
    prompt === ''
      ? 'Summarise what the inputs contain in a few sentences.'
      : 'Answer the question in a few sentences from these findings. If they do not answer it, say so plainly.',
  );
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: lines.join('\n') },
  ];
}
