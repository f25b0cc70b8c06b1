import { status, type ServiceError } from '@grpc/grpc-js';
import { certAndKey, OPTION_SETTING_NAMES, withEnv, type SettingNames } from './setting-names.js';
import type { JobView } from './views.js';

/**
 * What kind of failure a call met; the CLI maps each to an exit code. Codes named like gRPC
 * statuses come from the coordinator's answer (or from gRPC when it could not be reached);
 * NOT_READY, JOB_FAILED, ABORTED and INTEGRITY are this client's own. Every code is described
 * in packages/client/README.md ("Errors").
 */
export type ClientErrorCode =
  /** The coordinator refused the request (a bad parameter, an unreadable input), or the options contradict each other. */
  | 'INVALID_ARGUMENT'
  /** No such job, blob, worker or token. */
  | 'NOT_FOUND'
  /** The coordinator holds that already. */
  | 'ALREADY_EXISTS'
  /** The job is not in a state for that call (`retry` of a job with nothing failed). */
  | 'FAILED_PRECONDITION'
  /** A limit or quota refused the call: `limit` names it, `retryAfterMs` says when a rate allows it again. */
  | 'RESOURCE_EXHAUSTED'
  /** No token, or a wrong, expired or revoked one. */
  | 'UNAUTHENTICATED'
  /** The token's role or tenant does not allow the call. */
  | 'PERMISSION_DENIED'
  /** The coordinator cannot be reached (nothing listens, a TLS handshake failed: the message says which). */
  | 'UNAVAILABLE'
  /** The coordinator did not answer in time. */
  | 'DEADLINE_EXCEEDED'
  /** The call was cancelled on the way (its connection closed under it). */
  | 'CANCELLED'
  /** The job has not ended yet, so it has no result (`result()` without `wait`, `saveResult`). */
  | 'NOT_READY'
  /** The job failed or was cancelled without a result; the message carries the job's error. */
  | 'JOB_FAILED'
  /** The caller's AbortSignal stopped the call (`waitForJob`, `result` with `wait`). */
  | 'ABORTED'
  /** Downloaded bytes did not hash to the blob's SHA-256, or were more than expected. */
  | 'INTEGRITY'
  /** Anything else: a bug on one side. */
  | 'INTERNAL';

/** Every ClientErrorCode, for code that checks a value it was given. */
export const CLIENT_ERROR_CODES: readonly ClientErrorCode[] = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'NOT_READY',
  'JOB_FAILED',
  'ABORTED',
  'INTEGRITY',
  'INTERNAL',
];

export interface MmgridClientErrorOptions {
  readonly cause?: unknown;
  readonly limit?: string;
  readonly retryAfterMs?: number;
  readonly job?: JobView;
}

/** An error from talking to a coordinator, with a message a person can act on. */
export class MmgridClientError extends Error {
  /**
   * For RESOURCE_EXHAUSTED: the coordinator's limit that refused the call, named as its option
   * ("maxInputsPerJob", "maxLiveJobsPerTenant", "submitRatePerTenant"…; docs/security.md,
   * "Limits"); "maxMessageBytes" for a message over the gRPC size limit.
   */
  readonly limit: string | undefined;
  /** For a rate limit: milliseconds after which the same call may succeed. */
  readonly retryAfterMs: number | undefined;
  /** For NOT_READY, JOB_FAILED and ABORTED: the job as last seen (its state, tasks and error). */
  readonly job: JobView | undefined;

  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: MmgridClientErrorOptions,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MmgridClientError';
    this.limit = options?.limit;
    this.retryAfterMs = options?.retryAfterMs;
    this.job = options?.job;
  }
}

/**
 * Whether `err` is an error of this client, and with `code`, one with that code.
 *
 * @example
 * ```ts
 * try {
 *   await client.result(jobId);
 * } catch (err) {
 *   if (isMmgridError(err, 'NOT_READY')) console.log(`still ${err.job?.state}`);
 *   else throw err;
 * }
 * ```
 */
export function isMmgridError(err: unknown, code?: ClientErrorCode): err is MmgridClientError {
  return err instanceof MmgridClientError && (code === undefined || err.code === code);
}

/** Trailing metadata of a coordinator's refusal for a limit (see the coordinator's limits.ts). */
const LIMIT_METADATA = 'mmgrid-limit';
const RETRY_AFTER_METADATA = 'retry-after-ms';

const codes: Partial<Record<status, ClientErrorCode>> = {
  [status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [status.OUT_OF_RANGE]: 'INVALID_ARGUMENT',
  [status.NOT_FOUND]: 'NOT_FOUND',
  [status.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [status.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [status.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [status.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [status.UNAVAILABLE]: 'UNAVAILABLE',
  [status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [status.CANCELLED]: 'CANCELLED',
  [status.DATA_LOSS]: 'INTEGRITY',
};

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

/** Whether a connection goes over TLS or in plaintext. */
export type Transport = 'tls' | 'plaintext';

/** The coordinator a call went to: its address, and how it was reached when that is known. */
export interface CallTarget {
  readonly address: string;
  readonly transport?: Transport;
  /** How messages name the settings to change. @default OPTION_SETTING_NAMES */
  readonly names?: SettingNames;
}

// What the TLS layer (OpenSSL, through Node) says in the details of an UNAVAILABLE status.
const CLIENT_CERT_REFUSED = /certificate required|alert bad certificate|alert unknown ca|alert certificate|alert number 4[0-9]|alert number 116|peer did not return a certificate/i;
const SERVER_CERT_UNTRUSTED =
  /self[- ]signed certificate|unable to (get|verify)|certificate (has expired|is not yet valid|signature failure)|Hostname\/IP does not match|does not match certificate|ERR_TLS_CERT|UNABLE_TO_VERIFY|DEPTH_ZERO_SELF_SIGNED|CERT_HAS_EXPIRED|IP: [^ ]+ is not in the cert/i;
const UNRELATED_TO_TLS = /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|DNS resolution|Name resolution|timed out/i;
const NOT_TLS = /wrong version number|packet length too long|unknown protocol|record layer failure|http request|WRONG_VERSION_NUMBER/i;

/**
 * grpc-js's details, without its framing ("No connection established. Last error: …
 * (time). Resolution note: ") and with an OpenSSL error line cut to its reason.
 */
export function tidyDetails(details: string): string {
  return details
    .replace(/^No connection established\. Last error: /, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/\.?\s*Resolution note:\s*$/, '')
    .replace(/^Error: /, '')
    .replace(/(?:[0-9A-F]+:)?error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):\S+:\d+:?(?:SSL alert number \d+)?/g, '$1')
    .trim();
}

/** The sentence for a call that could not reach the coordinator, naming TLS causes it recognises. */
function unavailableMessage(raw: string, address: string, transport: Transport | undefined, names: SettingNames): string {
  const details = tidyDetails(raw);
  if (CLIENT_CERT_REFUSED.test(details)) {
    return `the coordinator at ${address} refused the TLS connection because of this client's certificate (${details}). It requires mutual TLS: give a certificate signed by the CA it trusts with ${certAndKey(names)}.`;
  }
  if (SERVER_CERT_UNTRUSTED.test(details)) {
    return `cannot verify the TLS certificate of the coordinator at ${address} (${details}). Give the CA that signed it with ${withEnv(names.caFile)}, or ${names.serverName.name} if its certificate names another host than the address.`;
  }
  if (transport === 'tls' && NOT_TLS.test(details)) {
    return `the coordinator at ${address} did not answer in TLS (${details}): it may serve plaintext (started with --insecure). Connect with ${names.insecure.name} (or a grpc:// address), or give the coordinator --tls-cert and --tls-key.`;
  }
  const why = /ECONNREFUSED|Connection refused/i.test(details) ? 'connection refused' : details || 'unavailable';
  const { address: setting } = names;
  const base = `cannot reach coordinator at ${address} (${why}). Is it running? Set ${setting.name}${setting.env ? ` or ${setting.env}` : ''}.`;
  if (transport === 'plaintext' && why !== 'connection refused') {
    // A TLS listener drops a plaintext HTTP/2 preface without saying why.
    return `${base} If it serves TLS, connect with ${names.tls.name} (and ${names.caFile.name} for a private CA), or a grpcs:// address.`;
  }
  if (transport === 'tls' && why !== 'connection refused' && !UNRELATED_TO_TLS.test(why)) {
    // After a TLS 1.3 handshake the server checks the client's certificate, and a refusal then
    // often reaches the client as a closed connection without the reason.
    return `${base} The TLS connection failed: if the coordinator requires mutual TLS, give a client certificate signed by its CA with ${certAndKey(names)}; check ${names.caFile.name} too.`;
  }
  return base;
}

/**
 * A refusal for a limit. The coordinator names its limits in trailing metadata; a refusal
 * without that name comes from gRPC itself (either end), whose only limit is a message's size.
 */
function limitError(err: ServiceError): MmgridClientError {
  const details = err.details || err.message;
  const named = err.metadata?.get(LIMIT_METADATA)[0];
  if (typeof named !== 'string' || named === '') {
    return new MmgridClientError(
      'RESOURCE_EXHAUSTED',
      `${details}: the request or its answer is larger than a gRPC message may be (the coordinator's --max-message-bytes, 8 MiB unless set, or this client's maxMessageBytes)`,
      { cause: err, limit: 'maxMessageBytes' },
    );
  }
  const after = Number(err.metadata.get(RETRY_AFTER_METADATA)[0] ?? Number.NaN);
  return new MmgridClientError('RESOURCE_EXHAUSTED', details, { cause: err, limit: named, ...(Number.isFinite(after) && after >= 0 ? { retryAfterMs: after } : {}) });
}

/** The one place where gRPC statuses become typed client errors. */
export function toClientError(err: unknown, target: string | CallTarget): MmgridClientError {
  if (err instanceof MmgridClientError) return err;
  const { address, transport, names = OPTION_SETTING_NAMES } = typeof target === 'string' ? { address: target } : target;
  if (!isServiceError(err)) {
    return new MmgridClientError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
  }
  const code = codes[err.code] ?? 'INTERNAL';
  if (code === 'UNAVAILABLE') {
    return new MmgridClientError(code, unavailableMessage(err.details, address, transport, names), { cause: err });
  }
  if (code === 'DEADLINE_EXCEEDED') {
    return new MmgridClientError(code, `the coordinator at ${address} did not answer in time`, { cause: err });
  }
  if (code === 'RESOURCE_EXHAUSTED') return limitError(err);
  return new MmgridClientError(code, err.details || err.message, { cause: err });
}
