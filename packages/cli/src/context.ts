import { FLAG_SETTING_NAMES, MmgridClient, resolveTransport, type ConnectionOptions } from '@mmgrid/client';
import { booleanEnv, isLoopbackHost, parseCoordinatorAddress } from '@mmgrid/core';
import { ExitCode } from './exit-codes.js';
import { CliError } from './errors.js';

/** Options every command shares (from flags, then the environment). */
export interface GlobalOptions {
  readonly coordinator: string;
  readonly token?: string;
  readonly tenant?: string;
  readonly tls?: boolean;
  readonly insecure?: boolean;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly tlsServerName?: string;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly debug: boolean;
}

export class CommandContext {
  private client: MmgridClient | undefined;

  constructor(readonly options: GlobalOptions) {}

  get json(): boolean {
    return this.options.json;
  }

  connect(): MmgridClient {
    if (this.client) return this.client;
    const options: ConnectionOptions = {
      address: this.options.coordinator,
      ...(this.options.token !== undefined ? { token: this.options.token } : {}),
      ...(this.options.tenant !== undefined ? { tenant: this.options.tenant } : {}),
      ...this.transport(),
      // Messages about the connection name the flags and variables a person sets here.
      settingNames: FLAG_SETTING_NAMES,
    };
    const { address, transport } = resolveTransport(options);
    if (transport === 'plaintext' && !isLoopbackHost(parseCoordinatorAddress('coordinator', address).host)) {
      this.note(`mmgrid: talking to ${address} in plaintext (--insecure): the token, inputs and results cross the network unencrypted`);
    }
    this.client = new MmgridClient(options);
    return this.client;
  }

  /** TLS or plaintext, and the TLS files: from the flags, then MMGRID_TLS / MMGRID_INSECURE. */
  transport(): Pick<ConnectionOptions, 'tls' | 'caFile' | 'certFile' | 'keyFile' | 'serverName'> {
    const o = this.options;
    const tls = o.tls ?? booleanEnv('MMGRID_TLS', process.env['MMGRID_TLS']);
    const insecure = o.insecure ?? booleanEnv('MMGRID_INSECURE', process.env['MMGRID_INSECURE']);
    if (tls === true && insecure === true) throw new CliError('--tls and --insecure (or MMGRID_TLS and MMGRID_INSECURE) contradict each other; give one', ExitCode.USAGE);
    return {
      ...(insecure === true ? { tls: false } : tls === true ? { tls: true } : {}),
      ...(o.ca !== undefined ? { caFile: o.ca } : {}),
      ...(o.cert !== undefined ? { certFile: o.cert } : {}),
      ...(o.key !== undefined ? { keyFile: o.key } : {}),
      ...(o.tlsServerName !== undefined ? { serverName: o.tlsServerName } : {}),
    };
  }

  /** Data for people, on stdout. */
  print(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  /** Data for scripts, on stdout. */
  printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Progress and notes, on stderr (never mixed into data). */
  note(text: string): void {
    if (!this.options.quiet) process.stderr.write(`${text}\n`);
  }

  close(): void {
    this.client?.close();
  }
}
