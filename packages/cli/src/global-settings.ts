import type { Command } from 'commander';
import {
  chooseProfile,
  configLocation,
  loadConfig,
  resolveSettings,
  type ConfigLocation,
  type EffectiveSettings,
  type FlagValues,
  type LoadedConfig,
  type ProfileChoice,
  type SettingName,
} from './config.js';
import type { GlobalOptions } from './context.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The program's global options as commander parsed them (values from flags, env or defaults). */
interface ParsedGlobals extends Omit<GlobalOptions, 'json' | 'quiet' | 'debug'> {
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly debug?: boolean;
  readonly profile?: string;
  readonly config?: string;
}

/** Each setting's option name in commander (camelCase). */
const OPTION_OF: Readonly<Record<SettingName, keyof GlobalOptions>> = {
  coordinator: 'coordinator',
  token: 'token',
  tenant: 'tenant',
  tls: 'tls',
  insecure: 'insecure',
  ca: 'ca',
  cert: 'cert',
  key: 'key',
  'tls-server-name': 'tlsServerName',
};

/** A global option's value if it was given on the command line (not from env or a default). */
function fromCommandLine<K extends keyof ParsedGlobals>(program: Command, name: K): ParsedGlobals[K] | undefined {
  return program.getOptionValueSource(name) === 'cli' ? program.opts<ParsedGlobals>()[name] : undefined;
}

/** The config file in use, and the profile chosen from it. */
export interface ConfigInUse {
  readonly config: LoadedConfig;
  readonly profile: ProfileChoice;
}

/** Where the config file is: --config, MMGRID_CONFIG or the default place. */
export function configLocationInUse(program: Command, env: Env): ConfigLocation {
  return configLocation(fromCommandLine(program, 'config'), env);
}

/** Reads the config file: --config, MMGRID_CONFIG or the default place. */
export function configFileInUse(program: Command, env: Env): LoadedConfig {
  return loadConfig(configLocationInUse(program, env));
}

/** Reads the config file and picks the profile (--profile, MMGRID_PROFILE, current-profile). */
export function configInUse(program: Command, env: Env): ConfigInUse {
  const config = configFileInUse(program, env);
  return { config, profile: chooseProfile(config, fromCommandLine(program, 'profile'), env) };
}

/** The settings in effect: the command line, then the environment, then the profile, then defaults. */
export function effectiveSettings(program: Command, env: Env, warn: (message: string) => void): EffectiveSettings {
  const { config, profile } = configInUse(program, env);
  const flags: FlagValues = {};
  for (const [setting, option] of Object.entries(OPTION_OF) as [SettingName, keyof GlobalOptions][]) {
    const value = fromCommandLine(program, option);
    if (typeof value === 'string' || typeof value === 'boolean') flags[setting] = value;
  }
  return resolveSettings({ flags, env, config, profile, warn });
}

/** The options a command runs with, from the settings in effect. */
export function globalOptions(program: Command, env: Env, warn: (message: string) => void): GlobalOptions {
  const { settings } = effectiveSettings(program, env, warn);
  const parsed = program.opts<ParsedGlobals>();
  const str = (name: SettingName): string | undefined => (typeof settings[name].value === 'string' ? (settings[name].value) : undefined);
  const bool = (name: SettingName): boolean | undefined => (typeof settings[name].value === 'boolean' ? (settings[name].value) : undefined);
  const optional = <T>(key: string, value: T | undefined): Record<string, T> => (value === undefined ? {} : { [key]: value });
  return {
    coordinator: str('coordinator') ?? parsed.coordinator,
    ...optional('token', str('token')),
    ...optional('tenant', str('tenant')),
    // Never undefined: CommandContext would read MMGRID_TLS / MMGRID_INSECURE again, over a flag.
    tls: bool('tls') ?? false,
    insecure: bool('insecure') ?? false,
    ...optional('ca', str('ca')),
    ...optional('cert', str('cert')),
    ...optional('key', str('key')),
    ...optional('tlsServerName', str('tls-server-name')),
    json: parsed.json === true,
    quiet: parsed.quiet === true,
    debug: parsed.debug === true,
  };
}
