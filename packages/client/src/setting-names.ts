/** A connection setting that a message may tell a person to change. */
export type SettingKey = 'address' | 'tls' | 'insecure' | 'caFile' | 'certFile' | 'keyFile' | 'serverName';

/** What a setting is called where it is set, and the environment variable that sets it too. */
export interface SettingName {
  readonly name: string;
  readonly env?: string;
}

/**
 * How error messages name the settings that would fix them: a program sets options of
 * ConnectionOptions, a person at the mmgrid command line sets flags and environment variables.
 */
export type SettingNames = Readonly<Record<SettingKey, SettingName>>;

/** ConnectionOptions' own names: the default, for programs that use the client. */
export const OPTION_SETTING_NAMES: SettingNames = {
  address: { name: 'the address option' },
  tls: { name: 'tls: true' },
  insecure: { name: 'tls: false' },
  caFile: { name: 'caFile' },
  certFile: { name: 'certFile' },
  keyFile: { name: 'keyFile' },
  serverName: { name: 'serverName' },
};

/** The flags and environment variables of `mmgrid` and `mmgrid worker`. */
export const FLAG_SETTING_NAMES: SettingNames = {
  address: { name: '--coordinator', env: 'MMGRID_COORDINATOR' },
  tls: { name: '--tls' },
  insecure: { name: '--insecure' },
  caFile: { name: '--ca', env: 'MMGRID_CA' },
  certFile: { name: '--cert', env: 'MMGRID_CERT' },
  keyFile: { name: '--key', env: 'MMGRID_CERT_KEY' },
  serverName: { name: '--tls-server-name', env: 'MMGRID_TLS_SERVER_NAME' },
};

/** "--ca (MMGRID_CA)", or "caFile" for a setting without a variable. */
export function withEnv(setting: SettingName): string {
  return setting.env ? `${setting.name} (${setting.env})` : setting.name;
}

/** "--cert and --key (MMGRID_CERT, MMGRID_CERT_KEY)", or "certFile and keyFile". */
export function certAndKey(names: SettingNames): string {
  const { certFile, keyFile } = names;
  const both = `${certFile.name} and ${keyFile.name}`;
  return certFile.env && keyFile.env ? `${both} (${certFile.env}, ${keyFile.env})` : both;
}
