import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unreadableFileReason } from '@mmgrid/core';
import { MmgridClientError } from './errors.js';
import { OPTION_SETTING_NAMES, type SettingNames } from './setting-names.js';

/** A TLS file given to a client that cannot be used: names the option, the file and what is wrong. */
export class TlsFileError extends MmgridClientError {
  constructor(
    readonly option: string,
    readonly file: string,
    problem: string,
  ) {
    super('INVALID_ARGUMENT', `${option} ${file}: ${problem}`);
    this.name = 'TlsFileError';
  }
}

/** The files of a client's TLS settings. */
export interface ClientTlsFiles {
  /** PEM CA certificates to trust instead of the system's (--ca). */
  readonly caFile?: string | undefined;
  /** PEM client certificate (chain) for mutual TLS (--cert). */
  readonly certFile?: string | undefined;
  /** PEM private key of that certificate (--key). */
  readonly keyFile?: string | undefined;
}

export interface ClientTlsMaterial {
  readonly ca: Buffer | null;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
}

function read(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsFileError(option, file, unreadableFileReason(err));
  }
}

/** Parses the first certificate of a PEM file, or throws naming the file. */
export function pemCertificate(option: string, file: string, pem: Buffer): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new TlsFileError(option, file, 'not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)');
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsFileError(option, file, `not a readable PEM certificate (${(err as Error).message})`);
  }
}

/** Parses a PEM private key, or throws naming the file. */
export function pemPrivateKey(option: string, file: string, pem: Buffer): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) throw new TlsFileError(option, file, 'not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)');
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsFileError(option, file, `not a readable PEM private key (${(err as Error).message}); an encrypted key must be decrypted first`);
  }
}

/**
 * Reads and checks a client's TLS files (each is PEM, the key matches the certificate, the
 * certificate has not expired), so a mistake is reported at start, naming the file and the
 * setting as `names` call it.
 *
 * @throws TlsFileError
 */
export function loadClientTlsFiles(files: ClientTlsFiles, now = new Date(), names: SettingNames = OPTION_SETTING_NAMES): ClientTlsMaterial {
  const [caOption, certOption, keyOption] = [names.caFile.name, names.certFile.name, names.keyFile.name];
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    const [given, missing] = files.certFile !== undefined ? [certOption, keyOption] : [keyOption, certOption];
    throw new MmgridClientError('INVALID_ARGUMENT', `${given} needs ${missing} too: a client certificate and its private key go together`);
  }
  let ca: Buffer | null = null;
  if (files.caFile !== undefined) {
    ca = read(caOption, files.caFile);
    pemCertificate(caOption, files.caFile, ca);
  }
  let cert: Buffer | null = null;
  let key: Buffer | null = null;
  if (files.certFile !== undefined && files.keyFile !== undefined) {
    cert = read(certOption, files.certFile);
    key = read(keyOption, files.keyFile);
    const x509 = pemCertificate(certOption, files.certFile, cert);
    const keyObject = pemPrivateKey(keyOption, files.keyFile, key);
    if (!x509.checkPrivateKey(keyObject)) throw new TlsFileError(keyOption, files.keyFile, `is not the private key of the certificate in ${files.certFile}`);
    if (new Date(x509.validTo).getTime() < now.getTime()) throw new TlsFileError(certOption, files.certFile, `the certificate expired on ${x509.validTo}`);
  }
  return { ca, cert, key };
}
