import { tempDir } from './cleanup';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Files of a test PKI, made with openssl at test time. */
export interface TestPki {
  dir: string;
  /** The CA that signed everything below. */
  caFile: string;
  /** Another CA, which signed nothing here (the "wrong CA"). */
  otherCaFile: string;
  /** The broker's key and certificate (127.0.0.1, localhost) in one PEM file, and apart. */
  serverPemFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** A server certificate that expired in 2020, key and certificate in one file. */
  expiredServerPemFile: string;
  /** A client certificate for mutual TLS, its key, and the key encrypted with `clientKeyPassphrase`. */
  clientCertFile: string;
  clientKeyFile: string;
  clientEncryptedKeyFile: string;
  clientKeyPassphrase: string;
}

function openssl(dir: string, ...args: string[]): void {
  const out = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${out.stderr}`);
}

/** A CA, a server certificate, an expired one, and a client certificate, in a temp folder. */
export function makePki(): TestPki {
  const dir = tempDir('pki-');
  const subj = (cn: string) => ['-subj', `/CN=${cn}/O=action-router tests`];
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', ...subj('test-ca'));
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '30', ...subj('other-ca'));
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', ...subj('localhost'));
  openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '30', '-extfile', 'server.ext');
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', ...subj('router-client'));
  openssl(dir, 'x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '30', '-extfile', 'client.ext');
  const passphrase = 'client-key-passphrase';
  openssl(dir, 'pkcs8', '-topk8', '-in', 'client.key', '-out', 'client-encrypted.key', '-v2', 'aes-256-cbc', '-passout', `pass:${passphrase}`);
  // An expired certificate: `openssl ca` takes explicit start and end dates.
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ ca ]', 'default_ca = test', '[ test ]', `dir = ${dir}`, 'database = $dir/index.txt', 'serial = $dir/serial',
      'new_certs_dir = $dir', 'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'default_md = sha256',
      'policy = any', 'copy_extensions = none', 'unique_subject = no', '[ any ]', 'commonName = supplied', 'organizationName = optional', '',
    ].join('\n'),
  );
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'expired.key', '-out', 'expired.csr', ...subj('localhost'));
  openssl(dir, 'ca', '-config', 'ca.cnf', '-batch', '-notext', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z',
    '-in', 'expired.csr', '-out', 'expired.crt', '-extfile', 'server.ext');
  const pem = (key: string, cert: string, out: string) => writeFileSync(join(dir, out), readFileSync(join(dir, key), 'utf8') + readFileSync(join(dir, cert), 'utf8'));
  pem('server.key', 'server.crt', 'server.pem');
  pem('expired.key', 'expired.crt', 'expired.pem');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    serverPemFile: join(dir, 'server.pem'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    expiredServerPemFile: join(dir, 'expired.pem'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    clientEncryptedKeyFile: join(dir, 'client-encrypted.key'),
    clientKeyPassphrase: passphrase,
  };
}
