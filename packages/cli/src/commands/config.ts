import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import {
  DEFAULT_PROFILE,
  editConfig,
  PROFILE_KEYS,
  profileValueOf,
  SETTING_NAMES,
  shownValue,
  type ProfileKey,
  type SettingValue,
} from '../config.js';
import { CliError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { configFileInUse, configInUse, configLocationInUse, effectiveSettings } from '../global-settings.js';
import { table } from '../table.js';

type Env = Readonly<Record<string, string | undefined>>;

/** What the config commands need: the parsed program (global options) and the environment. */
export interface ConfigCommandContext {
  readonly program: Command;
  readonly env: Env;
  readonly json: boolean;
  readonly quiet: boolean;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function outJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function note(ctx: ConfigCommandContext, text: string): void {
  if (!ctx.quiet) process.stderr.write(`${text}\n`);
}

const PROFILE_FROM = {
  flag: 'from --profile',
  env: 'from MMGRID_PROFILE',
  file: "from the file's current-profile",
  default: 'none was chosen with --profile, MMGRID_PROFILE or current-profile',
} as const;

/** `mmgrid config show`: each setting in effect and where it came from (the token masked). */
export function configShow(ctx: ConfigCommandContext): ExitCodeValue {
  const warn = (message: string): void => void process.stderr.write(`${message}\n`);
  const effective = effectiveSettings(ctx.program, ctx.env, warn);
  const settings = Object.fromEntries(SETTING_NAMES.map((name) => [name, { value: shownValue(name, effective.settings[name].value), source: effective.settings[name].source }]));
  if (ctx.json) {
    outJson({ profile: effective.profile.name, file: effective.file, settings });
    return ExitCode.OK;
  }
  const shown = (value: SettingValue | null): string => (value === null ? '-' : String(value));
  out(`profile: ${effective.profile.name} (${PROFILE_FROM[effective.profile.source]})`);
  out(`file:    ${effective.file}${existsSync(effective.file) ? '' : ' (does not exist yet; mmgrid config set makes it)'}`);
  out('');
  out(table([['SETTING', 'VALUE', 'SOURCE'], ...SETTING_NAMES.map((name) => [name, shown(settings[name]?.value ?? null), settings[name]?.source ?? 'default'])]));
  return ExitCode.OK;
}

/** `mmgrid config profiles`: the profiles of the file, the one in use marked. */
export function configProfiles(ctx: ConfigCommandContext): ExitCodeValue {
  const { config, profile } = configInUse(ctx.program, ctx.env);
  const names = [...config.profiles.keys()];
  if (!names.includes(DEFAULT_PROFILE) && profile.name === DEFAULT_PROFILE) names.unshift(DEFAULT_PROFILE);
  const rows = names.map((name) => ({ name, current: name === profile.name, coordinator: config.profiles.get(name)?.coordinator ?? null }));
  if (ctx.json) {
    outJson({ file: config.file, current: profile.name, profiles: rows });
    return ExitCode.OK;
  }
  out(table([['', 'PROFILE', 'COORDINATOR'], ...rows.map((r) => [r.current ? '*' : '', r.name, r.coordinator ?? '-'])]));
  return ExitCode.OK;
}

/** `mmgrid config path`: the config file in use (whether or not it exists). */
export function configPath(ctx: ConfigCommandContext): ExitCodeValue {
  // Neither read nor checked: the path is what one needs to mend a broken file.
  const { file } = configLocationInUse(ctx.program, ctx.env);
  if (ctx.json) outJson({ file, exists: existsSync(file) });
  else out(file);
  return ExitCode.OK;
}

function isProfileKey(key: string): key is ProfileKey {
  return (PROFILE_KEYS as readonly string[]).includes(key);
}

/** `mmgrid config set KEY VALUE`: sets a key of the profile in use (or --profile's, created if new). */
export async function configSet(ctx: ConfigCommandContext, key: string, value: string): Promise<ExitCodeValue> {
  if (!isProfileKey(key)) throw new CliError(`unknown key "${key}"; a profile takes ${PROFILE_KEYS.join(', ')}`, ExitCode.USAGE);
  const stored = profileValueOf(key, value, process.cwd());
  const { location, profile } = targetProfile(ctx);
  const written = await editConfig(location, (doc) => {
    doc.setIn(['profiles', profile, key], stored);
    // A token and a token file, or tls and insecure, would contradict each other: the newer one stays.
    if (key === 'token') doc.deleteIn(['profiles', profile, 'token-file']);
    if (key === 'token-file') doc.deleteIn(['profiles', profile, 'token']);
    if (key === 'tls' && stored === true) doc.deleteIn(['profiles', profile, 'insecure']);
    if (key === 'insecure' && stored === true) doc.deleteIn(['profiles', profile, 'tls']);
  });
  note(ctx, `mmgrid: set profiles.${profile}.${key} in ${written.file}`);
  if ((key === 'token' || key === 'token-file') && (written.mode & 0o077) !== 0) {
    process.stderr.write(`mmgrid: warning: ${written.file} can be read by other users (mode ${written.mode.toString(8)}); run: chmod 600 ${written.file}\n`);
  }
  return ExitCode.OK;
}

/** The profile `config set` writes to: --profile or MMGRID_PROFILE (created if new), else the current one. */
function targetProfile(ctx: ConfigCommandContext): { location: string; profile: string } {
  const config = configFileInUse(ctx.program, ctx.env);
  const named = ctx.program.opts<{ profile?: string }>().profile;
  return { location: config.file, profile: named !== undefined && named !== '' ? named : (config.currentProfile ?? DEFAULT_PROFILE) };
}

/** `mmgrid config use PROFILE`: makes PROFILE the current profile. */
export async function configUse(ctx: ConfigCommandContext, name: string): Promise<ExitCodeValue> {
  const config = configFileInUse(ctx.program, ctx.env);
  if (name !== DEFAULT_PROFILE && !config.profiles.has(name)) {
    const names = [...config.profiles.keys()];
    throw new CliError(
      `no profile "${name}"; ${names.length === 0 ? `${config.file} has no profiles` : `${config.file} has ${names.join(', ')}`} (mmgrid config set KEY VALUE --profile ${name} creates it)`,
      ExitCode.USAGE,
    );
  }
  const written = await editConfig(config.file, (doc) => {
    doc.set('current-profile', name);
  });
  note(ctx, `mmgrid: the current profile is ${name} (${written.file})`);
  return ExitCode.OK;
}
