import { status, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { resolveTransport, type ConnectionOptions } from '../connection.js';
import { MmgridClientError, tidyDetails, toClientError } from '../errors.js';
import { FLAG_SETTING_NAMES } from '../setting-names.js';
import { loadClientTlsFiles } from '../tls-files.js';

describe('resolveTransport', () => {
  const cases: { options: ConnectionOptions; address: string; transport: 'tls' | 'plaintext' }[] = [
    { options: {}, address: '127.0.0.1:7070', transport: 'plaintext' },
    { options: { address: 'localhost:7070' }, address: 'localhost:7070', transport: 'plaintext' },
    { options: { address: '[::1]:7070' }, address: '[::1]:7070', transport: 'plaintext' },
    { options: { address: 'grid.example.org:7070' }, address: 'grid.example.org:7070', transport: 'tls' },
    { options: { address: '10.0.0.5:7070' }, address: '10.0.0.5:7070', transport: 'tls' },
    { options: { address: 'grid.example.org:7070', tls: false }, address: 'grid.example.org:7070', transport: 'plaintext' },
    { options: { address: '127.0.0.1:7070', tls: true }, address: '127.0.0.1:7070', transport: 'tls' },
    { options: { address: '127.0.0.1:7070', caFile: 'ca.pem' }, address: '127.0.0.1:7070', transport: 'tls' },
    { options: { address: '127.0.0.1:7070', serverName: 'grid' }, address: '127.0.0.1:7070', transport: 'tls' },
    { options: { address: 'grpcs://127.0.0.1:7070' }, address: '127.0.0.1:7070', transport: 'tls' },
    { options: { address: 'https://grid.example.org:443', tls: false }, address: 'grid.example.org:443', transport: 'tls' },
    { options: { address: 'grpc://grid.example.org:7070' }, address: 'grid.example.org:7070', transport: 'plaintext' },
    { options: { address: 'grpc://grid.example.org:7070', tls: true }, address: 'grid.example.org:7070', transport: 'plaintext' },
  ];
  it.each(cases)('$options → $transport to $address', ({ options, address, transport }) => {
    expect(resolveTransport(options)).toEqual({ address, transport });
  });

  it.each<ConnectionOptions>([
    { tls: false, caFile: 'ca.pem' },
    { tls: false, certFile: 'c.pem', keyFile: 'k.pem' },
    { address: 'grpc://grid.example.org:7070', caFile: 'ca.pem' },
  ])('refuses plaintext with TLS settings: %j', (options) => {
    expect(() => resolveTransport(options)).toThrow(MmgridClientError);
  });

  it("names the options a program sets, or a command line's flags when told to", () => {
    expect(() => resolveTransport({ tls: false, caFile: 'ca.pem' })).toThrow('tls: false (plaintext) does not go with caFile, certFile, keyFile or serverName (TLS settings); leave one or the other out');
    expect(() => resolveTransport({ tls: false, caFile: 'ca.pem', settingNames: FLAG_SETTING_NAMES })).toThrow(
      '--insecure (plaintext) does not go with --ca, --cert, --key or --tls-server-name (TLS settings); leave one or the other out',
    );
    expect(() => loadClientTlsFiles({ certFile: 'c.pem' })).toThrow('certFile needs keyFile too');
    expect(() => loadClientTlsFiles({ keyFile: 'k.pem' }, new Date(), FLAG_SETTING_NAMES)).toThrow('--key needs --cert too');
    expect(() => loadClientTlsFiles({ caFile: '/nowhere/ca.pem' })).toThrow(/^caFile \/nowhere\/ca\.pem: /);
  });
});

function unavailable(details: string): ServiceError {
  return Object.assign(new Error(`14 UNAVAILABLE: ${details}`), { code: status.UNAVAILABLE, details, metadata: undefined as never });
}

describe('toClientError on UNAVAILABLE', () => {
  const address = 'grid.example.org:7070';
  const cases: { details: string; transport: 'tls' | 'plaintext'; message: RegExp }[] = [
    { details: 'No connection established. Last error: connect ECONNREFUSED 10.0.0.1:7070', transport: 'tls', message: /^cannot reach coordinator at grid\.example\.org:7070 \(connection refused\)\. Is it running\? Set --coordinator or MMGRID_COORDINATOR\.$/ },
    { details: 'Connection dropped', transport: 'plaintext', message: /If it serves TLS, connect with --tls/ },
    { details: 'No connection established. Last error: Error: self-signed certificate in certificate chain', transport: 'tls', message: /cannot verify the TLS certificate of the coordinator at grid\.example\.org:7070 .*--ca/ },
    { details: "Hostname/IP does not match certificate's altnames: Host: grid.example.org. is not in the cert's altnames: DNS:localhost", transport: 'tls', message: /cannot verify the TLS certificate.*--tls-server-name/ },
    { details: 'SSL routines::tlsv13 alert certificate required', transport: 'tls', message: /refused the TLS connection because of this client's certificate.*--cert and --key/ },
    { details: 'ssl3_get_record:wrong version number', transport: 'tls', message: /did not answer in TLS .*--insecure/ },
  ];
  it.each(cases)('$details ($transport), as the command line says it', ({ details, transport, message }) => {
    const err = toClientError(unavailable(details), { address, transport, names: FLAG_SETTING_NAMES });
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(message);
  });

  // A program that uses the client sets options, not flags: the messages name those.
  const forPrograms: { details: string; transport: 'tls' | 'plaintext'; message: string }[] = [
    { details: 'connect ECONNREFUSED 10.0.0.1:7070', transport: 'tls', message: 'cannot reach coordinator at grid.example.org:7070 (connection refused). Is it running? Set the address option.' },
    { details: 'Connection dropped', transport: 'plaintext', message: 'If it serves TLS, connect with tls: true (and caFile for a private CA), or a grpcs:// address.' },
    { details: 'self-signed certificate in certificate chain', transport: 'tls', message: 'Give the CA that signed it with caFile, or serverName if its certificate names another host than the address.' },
    { details: 'SSL routines::tlsv13 alert certificate required', transport: 'tls', message: 'give a certificate signed by the CA it trusts with certFile and keyFile.' },
    { details: 'ssl3_get_record:wrong version number', transport: 'tls', message: 'Connect with tls: false (or a grpc:// address)' },
    { details: 'Connection dropped', transport: 'tls', message: 'give a client certificate signed by its CA with certFile and keyFile; check caFile too.' },
  ];
  it.each(forPrograms)('$details ($transport), as a program sees it', ({ details, transport, message }) => {
    const err = toClientError(unavailable(details), { address, transport });
    expect(err.message).toContain(message);
    // Only the coordinator's own flags may appear (how its operator would change it).
    expect(err.message).not.toMatch(/MMGRID_|--(coordinator|ca|cert|key|tls|tls-server-name)(?![\w-])/);
  });
});

describe('tidyDetails', () => {
  it('keeps the reason of an OpenSSL error and drops grpc-js framing', () => {
    const raw =
      'No connection established. Last error: 803CE3B2627F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n (2026-11-27T02:09:25.912Z). Resolution note: ';
    expect(tidyDetails(raw)).toBe('tlsv13 alert certificate required');
    expect(tidyDetails('No connection established. Last error: Error: self-signed certificate in certificate chain (2026-11-27T02:09:25.912Z)')).toBe('self-signed certificate in certificate chain');
    expect(tidyDetails('Connection dropped')).toBe('Connection dropped');
  });
});
