import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { unreadableFileReason } from '@mmgrid/core';
import type { ListenerTlsFiles } from './coordinator-options.js';
import { TlsConfigError } from './errors.js';

function read(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(option, `${option} ${file}: ${unreadableFileReason(err)}`, file);
  }
}

function certificate(option: string, file: string, pem: Buffer): X509Certificate {
  if (!pem.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw new TlsConfigError(option, `${option} ${file}: not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`, file);
  }
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new TlsConfigError(option, `${option} ${file}: not a readable PEM certificate (${(err as Error).message})`, file);
  }
}

function privateKey(option: string, file: string, pem: Buffer): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
    throw new TlsConfigError(option, `${option} ${file}: not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)`, file);
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsConfigError(option, `${option} ${file}: not a readable PEM private key (${(err as Error).message}); an encrypted key must be decrypted first`, file);
  }
}

/** What the listener serves, for the log line at start. */
export interface ListenerTlsSummary {
  /** The certificate's subject and the names it is valid for. */
  readonly subject: string;
  readonly names: string;
  readonly validTo: string;
  readonly mutual: boolean;
}

/**
 * Reads and checks the listener's TLS files (PEM; the key is the certificate's; the certificate
 * has not expired) and makes the server credentials. With a client CA, every caller must present
 * a certificate it signed: grpc-js checks client certificates per listener, not per service.
 *
 * @throws TlsConfigError naming the option and the file
 */
export function listenerCredentials(files: ListenerTlsFiles, now = new Date()): { credentials: ServerCredentials; summary: ListenerTlsSummary } {
  const cert = read('--tls-cert', files.certFile);
  const key = read('--tls-key', files.keyFile);
  const x509 = certificate('--tls-cert', files.certFile, cert);
  const keyObject = privateKey('--tls-key', files.keyFile, key);
  if (!x509.checkPrivateKey(keyObject)) {
    throw new TlsConfigError('--tls-key', `--tls-key ${files.keyFile}: is not the private key of the certificate in ${files.certFile}`, files.keyFile);
  }
  if (new Date(x509.validTo).getTime() < now.getTime()) {
    throw new TlsConfigError('--tls-cert', `--tls-cert ${files.certFile}: the certificate expired on ${x509.validTo}`, files.certFile);
  }
  let clientCa: Buffer | null = null;
  if (files.clientCaFile !== undefined) {
    clientCa = read('--tls-client-ca', files.clientCaFile);
    certificate('--tls-client-ca', files.clientCaFile, clientCa);
  }
  return {
    credentials: ServerCredentials.createSsl(clientCa, [{ cert_chain: cert, private_key: key }], clientCa !== null),
    summary: { subject: x509.subject.replace(/\n/g, ', '), names: x509.subjectAltName ?? '', validTo: x509.validTo, mutual: clientCa !== null },
  };
}
