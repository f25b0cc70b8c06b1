/**
 * @mmgrid/client — the TypeScript client for an mmgrid coordinator (the `mmgrid` CLI is built
 * on it): submit jobs with their files, watch their events, fetch results and blobs.
 *
 * @example
 * ```ts
 * import { MmgridClient } from '@mmgrid/client';
 *
 * const client = new MmgridClient({ address: process.env.MMGRID_COORDINATOR ?? '127.0.0.1:7070' });
 * try {
 *   const job = await client.submit([{ path: 'photo.png' }], { prompt: 'What does the label say?' });
 *   for await (const event of client.watch(job.id)) console.error(event.type, event.id);
 *   const result = await client.result(job.id);
 *   console.log(result.summary);
 *   await client.saveResult(job.id, 'out');
 * } finally {
 *   client.close();
 * }
 * ```
 */
export { BLOB_CHUNK_BYTES, BlobClient } from './blob-client.js';
export type { ProgressCallback, UploadResult } from './blob-client.js';
export { DEFAULT_COORDINATOR, resolveConnection, resolveTransport } from './connection.js';
export type { ConnectionOptions, ResolvedConnection } from './connection.js';
export { CLIENT_ERROR_CODES, isMmgridError, MmgridClientError, toClientError } from './errors.js';
export type { CallTarget, ClientErrorCode, MmgridClientErrorOptions, Transport } from './errors.js';
export { certAndKey, FLAG_SETTING_NAMES, OPTION_SETTING_NAMES, withEnv } from './setting-names.js';
export type { SettingKey, SettingName, SettingNames } from './setting-names.js';
export { loadClientTlsFiles, TlsFileError } from './tls-files.js';
export type { ClientTlsFiles, ClientTlsMaterial } from './tls-files.js';
export { MmgridClient } from './mmgrid-client.js';
export { hideTlsServerNameIpWarning } from './node-warnings.js';
export type { CreateTokenOptions, ListOptions, ResultOptions, SubmitInput, SubmitOptions, WaitOptions, WatchOptions } from './mmgrid-client.js';
export { findBlobRefs, RESULT_DOC_FILES, resultFiles, safeFileName } from './result-files.js';
export type { ResultFile } from './result-files.js';
export type { SavedFile, SaveResultOptions } from './save-result.js';
export { isTerminal, jobStateName, toEventView, toExplanationView, toJobView, toTokenView } from './views.js';
export type { ErrorView, ExplanationView, InputView, JobEventView, JobView, RequirementsView, ResultView, TaskView, TokenView } from './views.js';
