import { MmgridClient } from '@mmgrid/client';

/** Options every command shares (from flags, then the environment). */
export interface GlobalOptions {
  readonly coordinator: string;
  readonly token?: string;
  readonly tenant?: string;
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
    this.client ??= new MmgridClient({
      address: this.options.coordinator,
      ...(this.options.token !== undefined ? { token: this.options.token } : {}),
      ...(this.options.tenant !== undefined ? { tenant: this.options.tenant } : {}),
    });
    return this.client;
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
