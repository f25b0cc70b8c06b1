import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

/**
 * docs/cli.md and the README's command-line section say what `mmgrid --help` says: every
 * command and option the CLI has is documented, and the docs name none it lacks.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface HelpCommand {
  /** "submit", "token create"… */
  readonly path: string;
  /** Each option's flags ("-f, --file" as ["-f", "--file"]). */
  readonly flags: readonly (readonly string[])[];
}

/** The entries of one section ("Options:", "Commands:") of commander's help: their first word. */
function section(help: string, title: string): string[] {
  const lines = help.split('\n');
  const start = lines.findIndex((l) => l === title);
  if (start < 0) return [];
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || !line.startsWith(' ')) break;
    // An entry starts two spaces in; a wrapped description is indented further.
    const entry = /^ {2}(\S.*?)(?: {2,}|$)/.exec(line)?.[1];
    if (entry) out.push(entry);
  }
  return out;
}

/** The titles of the help's command sections (commands are grouped: "Jobs:", "Setup:"…). */
function commandSections(help: string): string[] {
  const notCommands = new Set(['Options:', 'Global Options:', 'Arguments:', 'Examples:', 'Install:']);
  return help.split('\n').filter((line) => /^[A-Z][\w ()-]*:$/.test(line) && !notCommands.has(line));
}

/** Each option's flags: "-f, --file <job.yaml>" gives ["-f", "--file"]. */
function flagsOf(entries: readonly string[]): string[][] {
  return entries
    .map((e) => e.split(/[ ,]+/).filter((word) => /^--?[a-zA-Z][a-zA-Z-]*$/.test(word)))
    .filter((flags) => flags.length > 0 && !flags.includes('--help'));
}

/** Whether the text names the option by one of its flags (as a whole flag, not a prefix of another). */
function names(text: string, flags: readonly string[]): boolean {
  return flags.some((flag) => new RegExp(`(^|[^\\w-])${flag}(?![\\w-])`).test(text));
}

/** Every command, depth first, with its options, read from `mmgrid … --help`. */
async function helpTree(prefix: readonly string[] = []): Promise<HelpCommand[]> {
  const help = await runCli([...prefix, '--help']);
  expect(help.code, `mmgrid ${prefix.join(' ')} --help`).toBe(0);
  const out: HelpCommand[] = [];
  if (prefix.length > 0) out.push({ path: prefix.join(' '), flags: flagsOf(section(help.stdout, 'Options:')) });
  for (const entry of commandSections(help.stdout).flatMap((title) => section(help.stdout, title))) {
    const name = entry.split(/[ |]/)[0] ?? '';
    if (name === 'help') continue;
    // `coordinator` and `worker` hand --help to their own programs (documented in their docs).
    if (prefix.length === 0 && (name === 'coordinator' || name === 'worker')) {
      out.push({ path: name, flags: [] });
      continue;
    }
    out.push(...(await helpTree([...prefix, name])));
  }
  return out;
}

/** The rows of docs/cli.md's commands table: the command path its first cell starts with. */
function documentedCommands(doc: string, known: readonly string[]): Map<string, string> {
  const table = doc.split('## Commands')[1]?.split('\n## ')[0] ?? '';
  const rows = new Map<string, string>();
  for (const line of table.split('\n')) {
    const cell = /^\| `([^`]+)`/.exec(line)?.[1];
    if (!cell) continue;
    // The longest known command the cell starts with ("token create" before "token").
    const words = cell.split(' ');
    let name = words[0] ?? '';
    for (let n = words.length; n > 0; n--) {
      const candidate = words.slice(0, n).join(' ');
      if (known.includes(candidate)) {
        name = candidate;
        break;
      }
    }
    rows.set(name, `${rows.get(name) ?? ''}\n${line}`);
  }
  return rows;
}

describe('docs/cli.md and the README match mmgrid --help', () => {
  let commands: HelpCommand[];
  let globalFlags: string[][];
  let doc: string;
  let readme: string;

  beforeAll(async () => {
    commands = await helpTree();
    globalFlags = flagsOf(section((await runCli(['--help'])).stdout, 'Options:'));
    doc = await readFile(path.join(root, 'docs', 'cli.md'), 'utf8');
    readme = await readFile(path.join(root, 'README.md'), 'utf8');
  });

  it('documents every command with every one of its options, and no command the CLI lacks', () => {
    const known = commands.map((c) => c.path);
    // The help was read: its groups and subcommands are all there.
    expect(known).toEqual(expect.arrayContaining(['submit', 'list', 'watch', 'queues', 'token create', 'workers release', 'config set', 'completion', 'version']));
    const rows = documentedCommands(doc, known);
    const groups = new Set(known.flatMap((k) => (k.includes(' ') ? [k.split(' ')[0] ?? ''] : [])));
    for (const command of commands) {
      // A group whose own row would say nothing more than its subcommands' may go without one.
      const row = rows.get(command.path);
      if (row === undefined && groups.has(command.path) && command.flags.length === 0) continue;
      expect(row, `docs/cli.md has no row for \`${command.path}\``).toBeDefined();
      for (const flags of command.flags) expect(names(row ?? '', flags), `docs/cli.md's row for \`${command.path}\` does not name ${flags.join(' or ')}`).toBe(true);
    }
    for (const name of rows.keys()) expect(known, `docs/cli.md documents \`${name}\`, which mmgrid --help does not list`).toContain(name);
  });

  it('documents every global option', () => {
    expect(globalFlags.flat()).toEqual(expect.arrayContaining(['--coordinator', '--json', '--quiet', '--debug']));
    const table = doc.split('## Global options')[1]?.split('\n## ')[0] ?? '';
    const rows = table.split('\n').filter((l) => l.startsWith('| `'));
    for (const flags of globalFlags) {
      if (flags.includes('--version')) continue;
      expect(rows.some((row) => names(/^\| `[^`]*`/.exec(row)?.[0] ?? '', flags)), `docs/cli.md's global options do not name ${flags.join(' or ')}`).toBe(true);
    }
  });

  it('the README names only commands and options that exist', () => {
    const known = new Set(commands.map((c) => c.path.split(' ')[0]));
    const all = new Set([...globalFlags.flat(), ...commands.flatMap((c) => c.flags.flat())]);
    const uses = [...readme.matchAll(/(?:pnpm )?mmgrid ([a-z][a-z-]*)((?: [^\n`|]*)?)/g)];
    expect(uses.length).toBeGreaterThan(5);
    for (const [text, name, rest] of uses) {
      expect(known, `README: "${text}" names no command of mmgrid --help`).toContain(name);
      if (name === 'worker' || name === 'coordinator') continue;
      for (const flag of (rest ?? '').match(/(?<=\s)--[a-z][a-z-]*/g) ?? []) expect(all, `README: "${text}" uses ${flag}, which no mmgrid --help lists`).toContain(flag);
    }
  });
});
