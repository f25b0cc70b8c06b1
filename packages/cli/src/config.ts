import { readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { Document, isMap, parseDocument } from 'yaml';
import { z } from 'zod';
import { DEFAULT_COORDINATOR } from '@mmgrid/client';
import { booleanEnv, issueParts, issuePathText, parseYamlSource, YamlSyntaxError, type YamlSource } from '@mmgrid/core';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** The profile used when none is named (by --profile, MMGRID_PROFILE or current-profile). */
export const DEFAULT_PROFILE = 'default';

const text = z.string({ error: 'expected text' }).min(1, 'must not be empty');
const flag = z.boolean({ error: 'expected true or false' });

/** One profile of the config file. */
export const profileSchema = z
  .object({
    coordinator: text.optional(),
    token: text.optional(),
    'token-file': text.optional(),
    tenant: text.optional(),
    tls: flag.optional(),
    insecure: flag.optional(),
    ca: text.optional(),
    cert: text.optional(),
    key: text.optional(),
    'tls-server-name': text.optional(),
  })
  .strict();

/** The config file (`~/.config/mmgrid/config.yaml`). */
export const configFileSchema = z
  .object({
    'current-profile': text.optional(),
    profiles: z.record(z.string(), profileSchema.nullable(), { error: 'expected a map of profile names to profiles' }).optional(),
  })
  .strict();

export type ProfileConfig = z.infer<typeof profileSchema>;
/** A key a profile takes (what `mmgrid config set` accepts). */
export type ProfileKey = keyof ProfileConfig;
export const PROFILE_KEYS = Object.keys(profileSchema.shape) as ProfileKey[];
const BOOLEAN_KEYS: readonly ProfileKey[] = ['tls', 'insecure'];
/** Keys that name files: relative paths resolve against the config file's folder. */
const FILE_KEYS: readonly ProfileKey[] = ['token-file', 'ca', 'cert', 'key'];

/** The settings every command shares, in the order `config show` lists them. */
export const SETTING_NAMES = ['coordinator', 'token', 'tenant', 'tls', 'insecure', 'ca', 'cert', 'key', 'tls-server-name'] as const;
export type SettingName = (typeof SETTING_NAMES)[number];
export type SettingValue = string | boolean;

/** Where a setting came from: "flag", "env", "profile NAME" or "default". */
export type SettingSource = 'flag' | 'env' | `profile ${string}` | 'default';

export interface Setting {
  /** undefined: not set anywhere (the built-in behaviour applies). */
  readonly value: SettingValue | undefined;
  readonly source: SettingSource;
}

/** The environment variable of each setting. */
export const SETTING_ENV: Readonly<Record<SettingName, string>> = {
  coordinator: 'MMGRID_COORDINATOR',
  token: 'MMGRID_TOKEN',
  tenant: 'MMGRID_TENANT',
  tls: 'MMGRID_TLS',
  insecure: 'MMGRID_INSECURE',
  ca: 'MMGRID_CA',
  cert: 'MMGRID_CERT',
  key: 'MMGRID_CERT_KEY',
  'tls-server-name': 'MMGRID_TLS_SERVER_NAME',
};

type Env = Readonly<Record<string, string | undefined>>;

/** Which config file is in use, and whether the user named it (then it must exist). */
export interface ConfigLocation {
  readonly file: string;
  readonly explicit: boolean;
}

/** `~` and `~/…` as the home folder. */
export function expandHome(p: string, env: Env): string {
  const home = env['HOME'] ?? homedir();
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

/**
 * The config file: --config, else MMGRID_CONFIG, else `$XDG_CONFIG_HOME/mmgrid/config.yaml`,
 * else `~/.config/mmgrid/config.yaml`.
 */
export function configLocation(flagFile: string | undefined, env: Env): ConfigLocation {
  if (flagFile !== undefined && flagFile !== '') return { file: path.resolve(expandHome(flagFile, env)), explicit: true };
  const fromEnv = env['MMGRID_CONFIG'];
  if (fromEnv !== undefined && fromEnv !== '') return { file: path.resolve(expandHome(fromEnv, env)), explicit: true };
  const xdg = env['XDG_CONFIG_HOME'];
  // The XDG spec says a relative XDG_CONFIG_HOME is to be ignored.
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env['HOME'] ?? homedir(), '.config');
  return { file: path.join(base, 'mmgrid', 'config.yaml'), explicit: false };
}

/** A read and checked config file. */
export interface LoadedConfig {
  readonly file: string;
  /** false: there is no file (every profile is empty). */
  readonly exists: boolean;
  readonly currentProfile: string | undefined;
  readonly profiles: ReadonlyMap<string, ProfileConfig>;
  /** The file's permission bits (0 when it does not exist). */
  readonly mode: number;
  /** `file:line:col` of a field, for messages. */
  where(parts: readonly (string | number)[]): string;
}

function usage(message: string): never {
  throw new CliError(message, ExitCode.USAGE);
}

/** Checks config text: YAML syntax and shape; every problem names the file, line and column. */
export function parseConfig(textValue: string, file: string, mode = 0o600): LoadedConfig {
  let source: YamlSource;
  try {
    source = parseYamlSource(textValue, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) usage(`${err.where}: not valid YAML: ${err.reason}`);
    throw err;
  }
  const parsed = configFileSchema.safeParse(source.value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const parts = issueParts(issue?.path ?? []);
    const fieldPath = issuePathText(issue?.path ?? []);
    if (issue?.code === 'unrecognized_keys') {
      const takes = parts.length === 0 ? 'the file takes current-profile and profiles' : `a profile takes ${PROFILE_KEYS.join(', ')}`;
      usage(`${source.where([...parts, issue.keys[0] ?? ''])}: ${fieldPath === '' ? '' : `${fieldPath}: `}unknown key ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${takes}`);
    }
    if (fieldPath === '' && issue?.code === 'invalid_type') usage(`${file}: expected a map with current-profile and profiles`);
    usage(`${source.where(parts)}: ${fieldPath || 'the file'}: ${issue?.message ?? 'is not an mmgrid config file'}`);
  }
  const profiles = new Map<string, ProfileConfig>();
  for (const [name, profile] of Object.entries(parsed.data.profiles ?? {})) {
    if (profile?.tls === true && profile.insecure === true) usage(`${source.where(['profiles', name, 'insecure'])}: profiles.${name}: tls and insecure contradict each other; give one`);
    if (profile?.token !== undefined && profile['token-file'] !== undefined) usage(`${source.where(['profiles', name, 'token-file'])}: profiles.${name}: give token or token-file, not both`);
    profiles.set(name, profile ?? {});
  }
  return { file, exists: true, currentProfile: parsed.data['current-profile'], profiles, mode, where: (parts) => source.where(parts) };
}

function missing(file: string): LoadedConfig {
  return { file, exists: false, currentProfile: undefined, profiles: new Map(), mode: 0, where: () => file };
}

/**
 * Reads the config file. A missing file is an empty config, unless the user named it
 * (--config, MMGRID_CONFIG): then it is a usage error.
 */
export function loadConfig(location: ConfigLocation): LoadedConfig {
  let textValue: string;
  let mode: number;
  try {
    textValue = readFileSync(location.file, 'utf8');
    mode = statSync(location.file).mode & 0o777;
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? err.code : undefined;
    if (code === 'ENOENT' && !location.explicit) return missing(location.file);
    if (code === 'ENOENT') usage(`no such config file: ${location.file} (named by --config or MMGRID_CONFIG)`);
    usage(`cannot read the config file ${location.file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseConfig(textValue, location.file, mode);
}

/** The profile's name and where that choice came from. */
export interface ProfileChoice {
  readonly name: string;
  readonly source: 'flag' | 'env' | 'file' | 'default';
}

/** --profile, else MMGRID_PROFILE, else the file's current-profile, else "default". */
export function chooseProfile(config: LoadedConfig, flagProfile: string | undefined, env: Env): ProfileChoice {
  const choice: ProfileChoice =
    flagProfile !== undefined
      ? { name: flagProfile, source: 'flag' }
      : env['MMGRID_PROFILE'] !== undefined && env['MMGRID_PROFILE'] !== ''
        ? { name: env['MMGRID_PROFILE'], source: 'env' }
        : config.currentProfile !== undefined
          ? { name: config.currentProfile, source: 'file' }
          : { name: DEFAULT_PROFILE, source: 'default' };
  if (choice.name !== DEFAULT_PROFILE && !config.profiles.has(choice.name)) {
    const by = choice.source === 'flag' ? '--profile' : choice.source === 'env' ? 'MMGRID_PROFILE' : `current-profile (${config.where(['current-profile'])})`;
    const names = [...config.profiles.keys()];
    const known = names.length === 0 ? (config.exists ? `${config.file} has no profiles` : `there is no config file at ${config.file}`) : `${config.file} has ${names.join(', ')}`;
    usage(`no profile "${choice.name}" (named by ${by}); ${known}`);
  }
  return choice;
}

/** The values given on the command line (commander's source 'cli'); undefined where none was. */
export type FlagValues = Partial<Record<SettingName, SettingValue>>;

export interface ResolveInput {
  readonly flags: FlagValues;
  readonly env: Env;
  readonly config: LoadedConfig;
  readonly profile: ProfileChoice;
  /** Where warnings go (a token in a file others can read). */
  readonly warn: (message: string) => void;
}

/** The settings in effect, each with where it came from. */
export interface EffectiveSettings {
  readonly profile: ProfileChoice;
  readonly file: string;
  readonly settings: Readonly<Record<SettingName, Setting>>;
}

function envValue(name: SettingName, env: Env): SettingValue | undefined {
  const raw = env[SETTING_ENV[name]];
  if (raw === undefined) return undefined;
  if (name === 'tls' || name === 'insecure') return booleanEnv(SETTING_ENV[name], raw);
  return raw === '' ? undefined : raw;
}

function looseMode(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

function readTokenFile(config: LoadedConfig, profileName: string, file: string, warn: (message: string) => void): string {
  const where = config.where(['profiles', profileName, 'token-file']);
  let token: string;
  let mode: number;
  try {
    token = readFileSync(file, 'utf8').trim();
    mode = statSync(file).mode & 0o777;
  } catch {
    usage(`${where}: profiles.${profileName}.token-file: cannot read ${file}`);
  }
  if (looseMode(mode)) warn(`mmgrid: warning: the token file ${file} can be read by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  if (token === '') usage(`${where}: profiles.${profileName}.token-file: ${file} is empty`);
  return token;
}

/** The profile's value of a setting, with file paths resolved against the config file's folder. */
function profileValue(name: SettingName, input: ResolveInput): SettingValue | undefined {
  const profile = input.config.profiles.get(input.profile.name);
  if (profile === undefined) return undefined;
  const base = path.dirname(input.config.file);
  const file = (p: string): string => path.resolve(base, expandHome(p, input.env));
  if (name === 'token') {
    if (profile.token !== undefined) {
      if (looseMode(input.config.mode)) {
        input.warn(
          `mmgrid: warning: ${input.config.file} holds a token and can be read by other users (mode ${input.config.mode.toString(8)}); run: chmod 600 ${input.config.file}`,
        );
      }
      return profile.token;
    }
    const tokenFile = profile['token-file'];
    return tokenFile === undefined ? undefined : readTokenFile(input.config, input.profile.name, file(tokenFile), input.warn);
  }
  const value = profile[name];
  if (typeof value === 'string' && FILE_KEYS.includes(name)) return file(value);
  return value;
}

const RANK: Record<'flag' | 'env' | 'profile' | 'default', number> = { flag: 3, env: 2, profile: 1, default: 0 };
const rankOf = (source: SettingSource): number => RANK[source.startsWith('profile') ? 'profile' : (source as 'flag' | 'env' | 'default')];

/** Every setting from the first of: the command line, the environment, the profile, the default. */
export function resolveSettings(input: ResolveInput): EffectiveSettings {
  const fromProfile: SettingSource = `profile ${input.profile.name}`;
  const settings = {} as Record<SettingName, Setting>;
  for (const name of SETTING_NAMES) {
    const flagValue = input.flags[name];
    if (flagValue !== undefined) {
      settings[name] = { value: flagValue, source: 'flag' };
      continue;
    }
    const env = envValue(name, input.env);
    if (env !== undefined) {
      settings[name] = { value: env, source: 'env' };
      continue;
    }
    const profile = profileValue(name, input);
    if (profile !== undefined) settings[name] = { value: profile, source: fromProfile };
    else settings[name] = { value: name === 'coordinator' ? DEFAULT_COORDINATOR : undefined, source: 'default' };
  }
  // tls and insecure are one choice made at two places: the nearer one wins (`--insecure` over a
  // profile's `tls: true`); both at one place contradict each other, which the caller reports.
  if (settings.tls.value === true && settings.insecure.value === true && rankOf(settings.tls.source) !== rankOf(settings.insecure.source)) {
    if (rankOf(settings.tls.source) > rankOf(settings.insecure.source)) settings.insecure = { value: undefined, source: 'default' };
    else settings.tls = { value: undefined, source: 'default' };
  }
  return { profile: input.profile, file: input.config.file, settings };
}

/** "mmg_…a1b2": enough to tell tokens apart, not to use one. */
export function maskToken(token: string): string {
  const prefix = token.startsWith('mmg_') ? 'mmg_' : '';
  return token.length - prefix.length >= 8 ? `${prefix}…${token.slice(-4)}` : `${prefix}…`;
}

/** A setting's value as `config show` prints it (the token masked). */
export function shownValue(name: SettingName, value: SettingValue | undefined): SettingValue | null {
  if (value === undefined) return null;
  return name === 'token' && typeof value === 'string' ? maskToken(value) : value;
}

/** A `config set` value as the file keeps it: booleans for tls/insecure, absolute paths for files. */
export function profileValueOf(key: ProfileKey, value: string, cwd: string): string | boolean {
  if (BOOLEAN_KEYS.includes(key)) {
    const v = value.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    usage(`${key} takes true or false, not "${value}"`);
  }
  if (value === '') usage(`${key} must not be empty`);
  if (FILE_KEYS.includes(key) && !value.startsWith('~')) return path.resolve(cwd, value);
  return value;
}

async function readOrEmpty(file: string): Promise<{ text: string; exists: boolean }> {
  try {
    return { text: await readFile(file, 'utf8'), exists: true };
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return { text: '', exists: false };
    throw err;
  }
}

/**
 * Changes the config file through the yaml Document API, so its comments, order and other keys
 * stay as they were; the result is checked before it is written. A new file (and its folder)
 * is created readable by its owner only.
 */
export async function editConfig(file: string, edit: (doc: Document, before: LoadedConfig) => void): Promise<LoadedConfig> {
  const { text: before, exists } = await readOrEmpty(file);
  const loaded = exists ? parseConfig(before, file) : missing(file);
  const parsed = parseDocument(before);
  let doc: Document = parsed;
  if (!isMap(parsed.contents)) {
    // An empty file (or one of comments only): start a map, keeping the comments.
    doc = new Document({});
    doc.commentBefore = parsed.commentBefore ?? parsed.comment;
  }
  edit(doc, loaded);
  const after = doc.toString();
  const checked = parseConfig(after, file);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, after, { mode: 0o600 });
  return { ...checked, mode: (await stat(file)).mode & 0o777 };
}
