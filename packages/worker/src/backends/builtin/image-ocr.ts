import { createRequire } from 'node:module';
import path from 'node:path';
import { createWorker, type Worker as TesseractWorker } from 'tesseract.js';
import type { ImageOcrOutput } from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';
import { openImage } from './image-decode.js';

const require = createRequire(import.meta.url);

/** English LSTM data shipped in npm (@tesseract.js-data/eng): nothing is downloaded at run time. */
function languageDataDir(): string {
  return path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
}

type OcrSpan = ImageOcrOutput['words'][number];

/**
 * `image.ocr`: Tesseract (tesseract.js, WebAssembly, in worker threads) reads the text of an
 * image. Tesseract engines are kept warm, one per slot, and reused.
 */
export class ImageOcrHandler implements TaskHandler {
  readonly kind = 'image.ocr';
  readonly description = 'Tesseract OCR, English (tesseract.js)';
  private readonly idle: TesseractWorker[] = [];
  private readonly all: TesseractWorker[] = [];

  private async acquire(): Promise<TesseractWorker> {
    const ready = this.idle.pop();
    if (ready) return ready;
    const worker = await createWorker('eng', 1, { langPath: languageDataDir(), cacheMethod: 'none', gzip: true });
    this.all.push(worker);
    return worker;
  }

  async run(ctx: TaskContext): Promise<ImageOcrOutput> {
    const [name, file] = [...ctx.files][0] ?? [];
    if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'image.ocr needs one image input', false);
    const language = typeof ctx.params['language'] === 'string' ? ctx.params['language'] : 'eng';
    if (language !== 'eng') throw new TaskFailedError('INVALID_PARAMS', `language "${language}" is not installed on this worker; available: eng`, false);
    const { image, metadata } = await openImage(file);
    ctx.progress(0.1, 'image decoded');
    // Tesseract reads a clean greyscale PNG; sharp has already checked the bytes.
    const png = await image.clone().rotate().greyscale().png().toBuffer();
    const worker = await this.acquire();
    try {
      if (ctx.signal.aborted) throw new TaskFailedError('CANCELLED', 'stopped before OCR', false);
      const { data } = await worker.recognize(png, {}, { text: true, blocks: true });
      const lines: OcrSpan[] = [];
      const words: OcrSpan[] = [];
      for (const block of data.blocks ?? []) {
        for (const paragraph of block.paragraphs) {
          for (const line of paragraph.lines) {
            lines.push({ text: line.text.trim(), confidence: clamp(line.confidence), bbox: line.bbox });
            for (const word of line.words) words.push({ text: word.text, confidence: clamp(word.confidence), bbox: word.bbox });
          }
        }
      }
      ctx.progress(1, `${words.length} words`);
      return {
        text: data.text.trim(),
        confidence: clamp(data.confidence),
        language,
        width: metadata.autoOrient?.width ?? metadata.width ?? 1,
        height: metadata.autoOrient?.height ?? metadata.height ?? 1,
        lines,
        words,
      };
    } catch (err) {
      if (err instanceof TaskFailedError) throw err;
      throw new InputDecodeError(`OCR failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      this.idle.push(worker);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }
}

function clamp(confidence: number): number {
  return Math.min(100, Math.max(0, Math.round(confidence * 10) / 10));
}
