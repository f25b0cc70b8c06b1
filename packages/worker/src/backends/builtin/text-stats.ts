import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isSha256, textStats, type JsonObject, type TextStatsOutput } from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';
import { textThreads, type TextThreads } from './text-threads.js';

/** The counting itself is in core, shared with the stitching of chunked texts. */
export { textStats };

/**
 * The span of the text a task analyses: `start` to `end` (UTF-16 code units, as text.split
 * gives them) when the params name one, else the whole text.
 */
export function textSpan(params: JsonObject, length: number): { start: number; end: number } | undefined {
  const start = params['start'];
  const end = params['end'];
  if (start === undefined && end === undefined) return undefined;
  const s = start ?? 0;
  const e = end ?? length;
  if (typeof s !== 'number' || typeof e !== 'number' || !Number.isSafeInteger(s) || !Number.isSafeInteger(e) || s < 0 || s >= e || e > length) {
    throw new TaskFailedError(
      'INVALID_PARAMS',
      `text.stats parameters start and end must be whole numbers with 0 <= start < end <= ${length} (the text's length in UTF-16 code units); got start ${JSON.stringify(start ?? null)}, end ${JSON.stringify(end ?? null)}`,
      false,
    );
  }
  return { start: s, end: e };
}

/** How many decoded texts a handler keeps (the shards of one long text all read the same one). */
const DECODED_KEPT = 2;

/** `text.stats`: statistics of a text input or of the prompt, or of a span of it (a shard). */
export class TextStatsHandler implements TaskHandler {
  readonly kind = 'text.stats';
  readonly description = 'words, sentences, scripts, frequent terms (Unicode segmentation)';
  /**
   * Texts decoded lately, by blob file (blob files are named by their SHA-256, so a name
   * always holds the same bytes): the shards of a long text share one decoding.
   */
  private readonly decoded = new Map<string, Promise<string>>();

  /** `threads`: where the counting runs (segmenting a long text takes a thread for seconds). */
  constructor(private readonly threads: TextThreads = textThreads()) {}

  async run(ctx: TaskContext): Promise<TextStatsOutput> {
    const source = ctx.params['source'] === 'prompt' ? 'prompt' : 'input';
    const [textName, inline] = [...ctx.texts][0] ?? [];
    let text: string;
    if (textName !== undefined && inline !== undefined) {
      text = inline;
    } else {
      const [name, file] = [...ctx.files][0] ?? [];
      if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'text.stats needs one text input', false);
      text = await this.decode(name, file, ctx.params['start'] !== undefined || ctx.params['end'] !== undefined);
    }
    const span = textSpan(ctx.params, text.length);
    return this.threads.stats(span ? text.slice(span.start, span.end) : text, source, ctx.signal);
  }

  private async decode(name: string, file: string, keep: boolean): Promise<string> {
    const key = path.basename(file);
    if (!keep || !isSha256(key)) return decodeFile(name, file);
    let text = this.decoded.get(key);
    if (text) {
      // Most recently used last.
      this.decoded.delete(key);
    } else {
      text = decodeFile(name, file);
      text.catch(() => this.decoded.delete(key));
    }
    this.decoded.set(key, text);
    for (const old of this.decoded.keys()) {
      if (this.decoded.size <= DECODED_KEPT) break;
      this.decoded.delete(old);
    }
    return text;
  }

  close(): Promise<void> {
    this.decoded.clear();
    return this.threads.close();
  }
}

async function decodeFile(name: string, file: string): Promise<string> {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
  } catch (err) {
    throw new InputDecodeError(`"${name}" is not valid UTF-8 text`, { cause: err });
  }
}
