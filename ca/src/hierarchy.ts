import type { KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { x509 } from '../../common/src/pki.ts';
import { newSerial } from './certificate.ts';
import { AlreadyInitialised } from './errors.ts';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateKeyPair,
  type KeyAlgorithm,
  signingSuite,
  toWebCryptoKey,
} from './keys.ts';
import { BACKDATE_MS, DAY_MS } from './validity.ts';

/**
 * The CA's own two levels, root and issuing CA: their keys, encrypted at rest in the data
 * directory's `keys/`, and their certificates, made once by `init` with @peculiar/x509. The
 * admin listener's TLS key is kept beside them under the same passphrase. What it leaves to the
 * authority: the state in LMDB (the certificates go into the CA's meta record) and the audit log.
 */

const ROOT_VALIDITY_DAYS = 20 * 365;
const ISSUING_VALIDITY_DAYS = 10 * 365;

/** Where a CA's data directory keeps what. */
export const caPaths = (dataDir: string) => ({
  store: join(dataDir, 'store'),
  keys: join(dataDir, 'keys'),
  rootKey: join(dataDir, 'keys', 'root-ca.key.pem'),
  issuingKey: join(dataDir, 'keys', 'issuing-ca.key.pem'),
  serverKey: join(dataDir, 'keys', 'ca-server.key.pem'),
});

export interface CaKeys {
  issuing: KeyObject;
  root: KeyObject;
}

export interface HierarchyOptions {
  dataDir: string;
  passphrase: string;
  keyAlgorithm: KeyAlgorithm;
  /** Names the CA certificates (`<caName> Root CA`, `<caName> Issuing CA 1`). */
  caName: string;
  /** Base URL of the public listener, written into CRL distribution points and AIA. */
  publicUrl: string;
}

export interface Hierarchy {
  keys: CaKeys;
  rootCert: Buffer;
  issuingCert: Buffer;
  /** The admin listener's key pair (P-256), for the certificate `init` issues it. */
  server: { privateKey: KeyObject; publicKey: KeyObject };
}

/**
 * Creates the root and the issuing CA and writes their keys, and the admin listener's, encrypted
 * with `passphrase`. Refuses a directory that holds a CA already.
 */
export async function createHierarchy(options: HierarchyOptions): Promise<Hierarchy> {
  const p = caPaths(options.dataDir);
  if (existsSync(p.issuingKey)) throw new AlreadyInitialised(`A CA already exists in ${options.dataDir}`);
  const root = generateKeyPair(options.keyAlgorithm);
  const issuing = generateKeyPair(options.keyAlgorithm);
  const rootPublic = new x509.PublicKey(root.publicKey.export({ type: 'spki', format: 'der' }));
  const issuingPublic = new x509.PublicKey(issuing.publicKey.export({ type: 'spki', format: 'der' }));
  const rootSki = await x509.SubjectKeyIdentifierExtension.create(rootPublic);
  const rootName = new x509.Name([{ CN: [`${options.caName} Root CA`] }, { O: [options.caName] }]);
  const signedByRoot = {
    signingKey: await toWebCryptoKey(root.privateKey, options.keyAlgorithm),
    signingAlgorithm: signingSuite(options.keyAlgorithm).webcrypto,
    now: Date.now(),
  };
  const rootCert = await caCertificate(signedByRoot, {
    subject: rootName,
    issuer: rootName,
    validityDays: ROOT_VALIDITY_DAYS,
    publicKey: rootPublic,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      rootSki,
    ],
  });
  const issuingCert = await caCertificate(signedByRoot, {
    subject: new x509.Name([{ CN: [`${options.caName} Issuing CA 1`] }, { O: [options.caName] }]),
    issuer: rootCert.subjectName,
    validityDays: ISSUING_VALIDITY_DAYS,
    publicKey: issuingPublic,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(issuingPublic),
      new x509.AuthorityKeyIdentifierExtension(rootSki.keyId),
      new x509.CRLDistributionPointsExtension([`${options.publicUrl}/crl/root`]),
      new x509.AuthorityInfoAccessExtension({ caIssuers: `${options.publicUrl}/ca/root.der` }),
    ],
  });

  mkdirSync(p.keys, { recursive: true, mode: 0o700 });
  writeSecret(p.rootKey, encryptPrivateKey(root.privateKey, options.passphrase));
  writeSecret(p.issuingKey, encryptPrivateKey(issuing.privateKey, options.passphrase));
  const server = generateKeyPair('P-256');
  writeSecret(p.serverKey, encryptPrivateKey(server.privateKey, options.passphrase));
  return {
    keys: { issuing: issuing.privateKey, root: root.privateKey },
    rootCert: Buffer.from(rootCert.rawData),
    issuingCert: Buffer.from(issuingCert.rawData),
    server,
  };
}

/** Decrypts the CA keys; PassphraseInvalid on a wrong passphrase. */
export function readCaKeys(dataDir: string, passphrase: string): CaKeys {
  const p = caPaths(dataDir);
  return {
    issuing: decryptPrivateKey(readFileSync(p.issuingKey), passphrase, 'issuing CA'),
    root: decryptPrivateKey(readFileSync(p.rootKey), passphrase, 'root CA'),
  };
}

/** Decrypts the admin listener's TLS key. */
export function readServerKey(dataDir: string, passphrase: string): KeyObject {
  return decryptPrivateKey(readFileSync(caPaths(dataDir).serverKey), passphrase, 'CA admin TLS');
}

/** One CA certificate, signed by the root key, valid from a minute ago for `validityDays`. */
function caCertificate(
  signer: { signingKey: CryptoKey; signingAlgorithm: EcdsaParams | RsaHashedImportParams; now: number },
  cert: {
    subject: x509.Name;
    issuer: x509.Name;
    validityDays: number;
    publicKey: x509.PublicKey;
    extensions: x509.Extension[];
  },
): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: new Date(signer.now - BACKDATE_MS),
    notAfter: new Date(signer.now + cert.validityDays * DAY_MS),
    publicKey: cert.publicKey,
    signingKey: signer.signingKey,
    signingAlgorithm: signer.signingAlgorithm,
    extensions: cert.extensions,
  });
}

function writeSecret(path: string, content: string): void {
  writeFileSync(path, content, { mode: 0o600 });
  chmodSync(path, 0o600);
}
