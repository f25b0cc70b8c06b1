import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

/** A YAML file that is not valid YAML: where (`file:line:col`) and why. */
export class YamlSyntaxError extends Error {
  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super(`${where}: not valid YAML: ${reason}`);
    this.name = 'YamlSyntaxError';
  }
}

/** A parsed YAML file that can say where each of its fields is written. */
export interface YamlSource {
  /** The document as plain JavaScript values. */
  readonly value: unknown;
  /**
   * `file:line:col` of a field, by its path (`['steps', 'ocr', 'from', 0]`): the key that
   * names it, or else the deepest part of the path the file has; just `file` for none.
   */
  where(parts: readonly (string | number)[]): string;
  /** The same, by a dotted path: "steps.ocr.from[0]" (for keys without "." in them). */
  wherePath(fieldPath: string): string;
}

/** "steps.ocr.from[0]" → ['steps', 'ocr', 'from', 0] */
export function splitFieldPath(fieldPath: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const m of fieldPath.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
  }
  return parts;
}

/** A zod-style issue path as parts: numbers stay numbers, anything else becomes a string. */
export function issueParts(path: readonly PropertyKey[]): (string | number)[] {
  return path.map((p) => (typeof p === 'number' ? p : String(p)));
}

/** A zod-style issue path as text: "steps.ocr.from[0]". */
export function issuePathText(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** The key node of the last path element (its line is where the field is written). */
function findKey(doc: Document, parts: readonly (string | number)[]): Node | undefined {
  const parent = parts.length > 1 ? doc.getIn(parts.slice(0, -1), true) : doc.contents;
  const last = parts[parts.length - 1];
  if (isMap(parent)) {
    const item = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
    return (item?.key as Node | undefined) ?? undefined;
  }
  if (isSeq(parent) && typeof last === 'number') return parent.items[last] as Node | undefined;
  return undefined;
}

/**
 * Parses YAML text (duplicate keys refused) and keeps where everything is, so that a problem
 * found later (by a schema) can be reported at its line.
 *
 * @throws YamlSyntaxError for text that is not valid YAML.
 */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = lines.linePos(syntax.pos[0]);
    throw new YamlSyntaxError(`${file}:${line}:${col}`, syntax.message.split('\n')[0] ?? syntax.code);
  }
  const where = (fieldParts: readonly (string | number)[]): string => {
    // The deepest node of the path that exists in the file.
    let parts = [...fieldParts];
    while (parts.length > 0) {
      const node = doc.getIn(parts, true) as Node | undefined;
      const range = findKey(doc, parts)?.range ?? node?.range;
      if (range) {
        const { line, col } = lines.linePos(range[0]);
        return `${file}:${line}:${col}`;
      }
      parts = parts.slice(0, -1);
    }
    return file;
  };
  return { value: doc.toJS() as unknown, where, wherePath: (fieldPath) => where(splitFieldPath(fieldPath)) };
}
