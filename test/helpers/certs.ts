import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM files made for a test: a CA, a server certificate for 127.0.0.1/localhost, client certificates. */
export interface TestCertificates {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate signed by `ca`. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Another CA, and a client certificate it signed (unknown to a coordinator that trusts `ca`). */
  readonly otherCa: string;
  readonly otherClientCert: string;
  readonly otherClientKey: string;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is not installed: sudo apt-get install -y openssl (or run scripts/install.sh)', { cause: err });
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

/** A P-256 key and a certificate signing request for `cn`. */
async function request(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
}

/** Signs `name`.csr with the CA `ca` (or itself when `ca` is undefined), with the extensions given. */
async function sign(dir: string, name: string, ca: string | undefined, extensions: string): Promise<void> {
  await writeFile(path.join(dir, `${name}.ext`), extensions);
  const signer = ca === undefined ? ['-signkey', `${name}.key`] : ['-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial'];
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, ...signer, '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`]);
}

/**
 * Makes the certificates with the openssl command, the way docs/security.md tells an operator
 * to: a CA, a server certificate for 127.0.0.1 and localhost, and client certificates.
 */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const caExt = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
  for (const ca of ['ca', 'other-ca']) {
    await request(dir, ca, `mmgrid test ${ca}`);
    await sign(dir, ca, undefined, caExt);
  }
  await request(dir, 'server', 'coordinator');
  await sign(dir, 'server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await request(dir, 'client', 'worker-1');
  await sign(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  await request(dir, 'other-client', 'worker-2');
  await sign(dir, 'other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const at = (f: string): string => path.join(dir, f);
  return {
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
    otherCa: at('other-ca.pem'),
    otherClientCert: at('other-client.pem'),
    otherClientKey: at('other-client.key'),
  };
}
