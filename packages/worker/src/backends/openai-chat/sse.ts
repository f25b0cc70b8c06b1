/** One server-sent event: its type ("message" unless the server named one) and its data lines joined by "\n". */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** A stream that is not server-sent events a client can use (a line longer than the limit). */
export class SseFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseFormatError';
  }
}

/** Longest event (its lines together) kept while waiting for its blank line, in UTF-16 code units. */
export const MAX_SSE_EVENT_CHARS = 8 * 1024 * 1024;

/**
 * Cuts text into server-sent events, as the HTML standard's event-stream parser does: lines
 * end in CRLF, LF or CR (a CRLF may be split between two chunks); `field: value` lines, one
 * leading space of the value dropped; lines starting with ":" are comments; a blank line
 * ends an event, and an event with no data is dropped. `id` and `retry` are ignored (nothing
 * here reconnects).
 *
 * One extension: llama.cpp's server writes an error in a stream as a line `error: {json}`,
 * which the standard would ignore; it is taken as `event: error` with that data, so the
 * error is seen.
 */
export class SseParser {
  private line = '';
  /** The previous chunk ended in CR: a LF starting the next one belongs to it. */
  private afterCr = false;
  private event = '';
  private data: string[] = [];
  private eventChars = 0;

  constructor(private readonly maxEventChars = MAX_SSE_EVENT_CHARS) {}

  /** Takes the next piece of the stream; returns the events it completed. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    if (text === '') return events;
    let start = 0;
    if (this.afterCr && text.startsWith('\n')) start = 1;
    this.afterCr = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      this.take(this.line + text.slice(start, i), events);
      this.line = '';
      if (c === 0x0d) {
        if (i + 1 === text.length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 0x0a) i += 1;
      }
      start = i + 1;
    }
    this.line += text.slice(start);
    if (this.line.length + this.eventChars > this.maxEventChars) {
      throw new SseFormatError(`an event of the stream is longer than ${this.maxEventChars} characters`);
    }
    return events;
  }

  /**
   * The stream ended. An event not closed by its blank line is dropped, as the standard says:
   * a stream cut short must not pass for a complete one.
   */
  end(): SseEvent[] {
    this.line = '';
    this.reset();
    return [];
  }

  private take(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) events.push({ event: this.event || 'message', data: this.data.join('\n') });
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.addData(value);
        break;
      case 'error':
        this.event = 'error';
        this.addData(value);
        break;
      default:
        // id, retry and unknown fields: nothing to do.
        break;
    }
  }

  private addData(value: string): void {
    this.data.push(value);
    this.eventChars += value.length + 1;
    if (this.eventChars > this.maxEventChars) throw new SseFormatError(`an event of the stream is longer than ${this.maxEventChars} characters`);
  }

  private reset(): void {
    this.event = '';
    this.data = [];
    this.eventChars = 0;
  }
}

/** The events of a byte stream (UTF-8; a byte-order mark at the start is skipped). */
export async function* sseEvents(body: AsyncIterable<Uint8Array>, maxEventChars = MAX_SSE_EVENT_CHARS): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser(maxEventChars);
  for await (const bytes of body) {
    yield* parser.push(decoder.decode(bytes, { stream: true }));
  }
  yield* parser.push(decoder.decode());
  yield* parser.end();
}
